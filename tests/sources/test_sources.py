from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from grader.errors import GraderError
from grader.sources.discover import Entry, choose_main, detect_layout, discover, folder_names, identify, stage
from grader.sources.names import job_names
from grader.sources.roster import Identity, Roster

LMS = Path(__file__).resolve().parents[1] / "data" / "lms"


@pytest.fixture(scope="module")
def roster() -> Roster:
    return Roster.load(LMS / "roster.csv")


@pytest.mark.parametrize("layout", ["files", "folders", "moodle", "canvas", "gradescope"])
def test_each_layout_is_detected(layout: str) -> None:
    assert detect_layout(LMS / layout) == layout
    assert discover([LMS / layout]).layouts == (layout,)


def test_files_layout_matches_extensions_in_any_case() -> None:
    d = discover([LMS / "files"])
    assert [e.main.name for e in d.entries] == ["alice.IPYNB", "bob.py"]  # notes.txt is not a submission
    assert [e.student.key for e in d.entries] == ["alice", "bob"]
    assert d.unmatched == () and d.missing == ()  # no roster, nothing to compare with


def test_folders_layout_a_folder_is_a_student_with_helpers() -> None:
    alice, bob = discover([LMS / "folders"], assignment="hw2").entries
    assert alice.main == LMS / "folders" / "alice" / "hw2.ipynb"
    assert alice.files == (alice.main, LMS / "folders" / "alice" / "utils.py")
    assert alice.names == ("hw2.ipynb", "utils.py")
    assert alice.student.key == "alice" and bob.main.name == "hw2.py"


@pytest.mark.parametrize(
    ("layout", "main", "alice_ids"),
    [
        ("moodle", "hw2.ipynb", {"moodle_id": "1001"}),
        ("canvas", "smithalice_1001_5_hw2.ipynb", {"canvas_id": "1001"}),
        ("gradescope", "hw2.ipynb", {"gradescope_id": "501"}),
    ],
)
def test_lms_layouts_name_the_student(layout: str, main: str, alice_ids: dict[str, str]) -> None:
    d = discover([LMS / layout], assignment="hw2")
    assert len(d.entries) == 2
    alice = next(e for e in d.entries if "1001" in e.student.key or e.student.sid == "s001")
    assert alice.main.name == main and alice.names == ("hw2.ipynb", "utils.py")
    assert alice.student.lms_ids == alice_ids


def test_moodle_reads_name_and_participant_and_merges_plugin_folders() -> None:
    d = discover([LMS / "moodle"], assignment="hw2")
    bob = next(e for e in d.entries if e.student.key == "1002")
    assert bob.student.name == "Bob Jones"
    assert bob.main.name == "hw2.py" and bob.files == (bob.main,)  # the online-text folder holds nothing to run


def test_canvas_groups_files_of_one_user_and_reads_late() -> None:
    d = discover([LMS / "canvas"], assignment="hw2")
    by_key = {e.student.key: e for e in d.entries}
    assert by_key["1001"].files == (LMS / "canvas" / "smithalice_1001_5_hw2.ipynb", LMS / "canvas" / "smithalice_1001_6_utils.py")
    assert by_key["1001"].staged_names == {"hw2.ipynb": by_key["1001"].files[0], "utils.py": by_key["1001"].files[1]}
    assert by_key["1002"].late and not by_key["1001"].late
    assert by_key["1002"].student.name == "jonesbob"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("smithalice_1001_5_hw2.ipynb", ("smithalice", None, "1001", "hw2.ipynb")),
        ("smithalice_late_1001_5_hw2.ipynb", ("smithalice", "late", "1001", "hw2.ipynb")),
        ("smithalice_LATE_1001_5_hw2.ipynb", ("smithalice", "LATE", "1001", "hw2.ipynb")),
        ("smith_jrbob_1001_5_hw_2_final.py", ("smith_jrbob", None, "1001", "hw_2_final.py")),
        ("smithalice_1001_5_hw2-1.ipynb", ("smithalice", None, "1001", "hw2-1.ipynb")),
    ],
)
def test_canvas_file_names(tmp_path: Path, name: str, expected: tuple[str, str | None, str, str]) -> None:
    (tmp_path / name).write_text("x = 1\n")
    assert detect_layout(tmp_path) == "canvas"
    (entry,) = discover([tmp_path]).entries
    login, late, uid, original = expected
    assert (entry.student.name, entry.late, entry.student.key, entry.names) == (login, late is not None, uid, (original,))


def test_gradescope_reads_ruby_yaml_and_groups(roster: Roster) -> None:
    d = discover([LMS / "gradescope"], assignment="hw2")
    alice, bob = d.entries
    assert (alice.student.name, alice.student.sid, alice.student.email) == ("Alice Smith", "s001", "alice@example.edu")
    assert [m.name for m in bob.members] == ["Dan Park"]  # a group submission: both get the score
    d = discover([LMS / "gradescope"], roster=roster, assignment="hw2")
    assert [s.key for s in d.missing] == ["s003"]  # Dan is Bob's partner, so not missing


def test_gradescope_bad_metadata_is_said_and_the_batch_goes_on(tmp_path: Path) -> None:
    (tmp_path / "submission_1").mkdir()
    (tmp_path / "submission_1" / "hw2.py").write_text("x = 1\n")
    (tmp_path / "submission_metadata.yml").write_text("submission_1: [unclosed\n")
    d = discover([tmp_path])
    assert [(e.student.key, e.main.name) for e in d.entries] == [("submission_1", "hw2.py")]
    assert len(d.notices) == 1
    assert d.notices[0].startswith(f"{tmp_path}/submission_metadata.yml: not readable YAML (")
    assert d.notices[0].endswith("; every submission is graded all the same, named by its folder")


@pytest.mark.parametrize("layout", ["moodle", "canvas", "gradescope"])
def test_roster_matches_lms_submissions(layout: str, roster: Roster) -> None:
    d = discover([LMS / layout], roster=roster, assignment="hw2")
    assert sorted(e.student.key for e in d.entries) == ["s001", "s002"]
    assert d.unmatched == ()
    assert "s003" in [s.key for s in d.missing]
    alice = next(e for e in d.entries if e.student.key == "s001")
    assert alice.student.name == "Alice Smith" and alice.student.lms_ids["section"] == "L01"


def test_unknown_submissions_are_graded_and_listed(tmp_path: Path, roster: Roster) -> None:
    for name in ("s001.py", "Bob Jones.py", "stranger.py"):
        (tmp_path / name).write_text("answer = 42\n")
    d = discover([tmp_path], roster=roster)
    assert [e.student.key for e in d.entries] == ["s002", "s001", "stranger"]  # by sid, by name, unknown
    assert [e.student.key for e in d.unmatched] == ["stranger"]
    assert [s.key for s in d.missing] == ["s003", "s004"]


def test_choose_main_rule(tmp_path: Path) -> None:
    def f(name: str, size: int) -> Path:
        p = tmp_path / name
        p.write_text("#" * size)
        return p

    small_nb, big_nb, py = f("scratch.ipynb", 10), f("draft.ipynb", 50), f("big.py", 500)
    assert choose_main([py, small_nb, big_nb]) == big_nb  # a notebook wins over .py; then the largest
    named = f("HW-2.ipynb", 1)
    assert choose_main([small_nb, big_nb, named], assignment="hw2") == named  # named like the assignment
    resub = f("x_1_2_hw2-1.ipynb", 1)
    assert choose_main([big_nb, resub], "hw2", names=["draft.ipynb", "hw2-1.ipynb"]) == resub
    assert choose_main([py]) == py


def test_empty_student_folder_is_an_entry(tmp_path: Path) -> None:
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "notes.txt").write_text("no code")
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / "hw.py").write_text("x = 1")
    d = discover([tmp_path], layout="folders")
    assert [e.main for e in d.entries] == [tmp_path / "alice", tmp_path / "bob" / "hw.py"]


def test_folder_names_keep_todays_names_for_plain_files(tmp_path: Path) -> None:
    for name in ("ann.py", "ann.ipynb", "logs.py", "bob.py"):
        (tmp_path / name).write_text("x = 1")
    d = discover([tmp_path])
    assert folder_names(d.entries) == job_names(d.mains)


def test_folder_names_are_unique_keys(roster: Roster) -> None:
    d = discover([LMS / "canvas"], roster=roster)
    assert folder_names(d.entries) == ["s002", "s001"]
    twice = [*d.entries, d.entries[1]]
    names = folder_names(twice)
    assert len({n.casefold() for n in names}) == 3 and all(n.startswith(("s001", "s002")) for n in names)
    logs = Entry(Path("x/logs.py"), (Path("x/logs.py"),), Identity("logs"), layout="folders")
    assert folder_names([logs]) != ["logs"]  # never a class file's name


@pytest.mark.parametrize(
    ("path", "key"),
    [
        (LMS / "canvas" / "jonesbob_LATE_1002_7_hw2.py", "1002"),
        (LMS / "moodle" / "Alice Smith_1001_assignsubmission_file_" / "hw2.ipynb", "1001"),
        (LMS / "gradescope" / "submission_502" / "hw2.py", "s002"),
        (LMS / "files" / "bob.py", "bob"),
    ],
)
def test_identify_reads_what_a_path_says(path: Path, key: str) -> None:
    assert identify(path).key == key


def test_stage_restores_the_students_names(tmp_path: Path) -> None:
    (entry,) = [e for e in discover([LMS / "canvas"]).entries if e.student.key == "1001"]
    main = stage(entry, tmp_path)
    assert main == tmp_path / "hw2.ipynb"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hw2.ipynb", "utils.py"]


def test_entry_round_trips() -> None:
    for e in discover([LMS / "gradescope"]).entries:
        assert Entry.from_dict(e.serialize()) == e


def test_unknown_layout_is_refused() -> None:
    with pytest.raises(GraderError, match="unknown submission layout 'blackboard'"):
        discover([LMS / "files"], layout="blackboard")


def test_a_single_file_target(tmp_path: Path) -> None:
    target = tmp_path / "x.PY"
    shutil.copy(LMS / "files" / "bob.py", target)
    (entry,) = discover([target]).entries
    assert entry.main == target and entry.student.key == "x"


def _nb(path: Path, text: str = "{}", mtime: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_canvas_grades_the_newest_resubmission_and_lists_the_others(tmp_path: Path) -> None:
    # The older file is the larger, and neither is named like the assignment: the attachment id decides.
    old = _nb(tmp_path / "leecarol_1003_5013_hw2.ipynb", "x" * 500)
    new = _nb(tmp_path / "leecarol_1003_5020_hw2-1.ipynb")
    (entry,) = discover([tmp_path], assignment="cnn-rnn").entries
    assert entry.main == new and entry.others == ("hw2.ipynb",)
    assert entry.choice == "graded hw2-1.ipynb (newest of 2; not graded: hw2.ipynb)"
    assert old not in entry.files  # a second notebook is never a helper
    assert Entry.from_dict(entry.serialize()) == entry


def test_resubmission_suffixes_order_newest_first(tmp_path: Path) -> None:
    files = [_nb(tmp_path / n) for n in ("hw2-2.ipynb", "hw2.ipynb", "hw2-10.ipynb", "hw2-1.ipynb")]
    assert choose_main(files, "cnn-rnn").name == "hw2-10.ipynb"


def test_moodle_grades_the_latest_upload(tmp_path: Path) -> None:
    folder = tmp_path / "Carol Lee_1003_assignsubmission_file_"
    _nb(folder / "hw2_final.ipynb", "{}", mtime=1_700_000_900)
    _nb(folder / "hw2_draft.ipynb", "x" * 500, mtime=1_700_000_000)
    (entry,) = discover([tmp_path], assignment="cnn-rnn").entries
    assert entry.main.name == "hw2_final.ipynb" and entry.others == ("hw2_draft.ipynb",)


def test_gradescope_active_submission_with_a_resubmitted_notebook(tmp_path: Path) -> None:
    (tmp_path / "submission_9").mkdir()
    (tmp_path / "submission_metadata.yml").write_text(
        "submission_9:\n  :submitters:\n  - :name: Carol Lee\n    :sid: s003\n    :email: carol@example.edu\n")
    _nb(tmp_path / "submission_9" / "hw2.ipynb", "x" * 500)
    _nb(tmp_path / "submission_9" / "hw2-1.ipynb")
    (entry,) = discover([tmp_path], assignment="cnn-rnn").entries
    assert entry.main.name == "hw2-1.ipynb" and entry.others == ("hw2.ipynb",) and entry.student.sid == "s003"


def test_a_lone_lms_named_file_joins_its_roster_student(tmp_path: Path, roster: Roster) -> None:
    lone = _nb(tmp_path / "diazcarol_LATE_1003_5020_hw2-1.ipynb")
    (entry,) = discover([lone], roster=roster).entries
    assert (entry.student.key, entry.student.name, entry.layout, entry.late) == ("s003", "Carol Diaz", "canvas", True)
    assert entry.names == ("hw2-1.ipynb",)
    assert folder_names([entry]) == ["s003"]
    (bare,) = discover([lone]).entries  # without a roster: the folder Canvas's download would give
    assert folder_names([bare]) == ["1003"]
    moodle = _nb(tmp_path / "Carol Diaz_1003_assignsubmission_file_" / "hw2.ipynb")
    (entry,) = discover([moodle], roster=roster).entries
    assert entry.student.key == "s003" and entry.layout == "moodle"


def test_canvas_test_student_is_left_out(tmp_path: Path) -> None:
    _nb(tmp_path / "studenttest_9999_1_hw2.ipynb")
    _nb(tmp_path / "leecarol_1003_2_hw2.ipynb")
    found = discover([tmp_path])
    assert [e.student.key for e in found.entries] == ["1003"]
    assert [e.student.key for e in found.left_out] == ["9999"]


def test_canvas_gradebook_roster_sis_user_id_is_the_sid_and_test_student_is_left_out() -> None:
    roster = Roster.parse(
        "Student,ID,SIS User ID,SIS Login ID,Section\n    Points Possible,,,,\n"
        '"Lee, Carol",1003,s003,clee,L01\n"Student, Test",9999,,,L01\n')
    (carol,) = roster.students
    assert (carol.key, carol.sid, carol.lms_ids["canvas_id"]) == ("s003", "s003", "1003")
    assert [s.lms_ids["canvas_id"] for s in roster.left_out] == ["9999"]


def test_helpers_are_not_listed_as_ungraded_candidates_but_earlier_versions_are(tmp_path: Path) -> None:
    _nb(tmp_path / "leecarol_1003_5013_hw2.py", "x = 1\n" * 50)
    _nb(tmp_path / "leecarol_1003_5020_hw2-1.py", "x = 2\n")
    _nb(tmp_path / "leecarol_1003_5021_utils.py", "y = 1\n")
    (entry,) = discover([tmp_path], assignment="hw2").entries
    assert entry.names[0] == "hw2-1.py" and entry.others == ("hw2.py",)
    assert set(entry.names) == {"hw2-1.py", "hw2.py", "utils.py"}  # every .py file stays importable


# -- links and names a student chooses ---------------------------------------------------------------------------

def _secret(tmp_path: Path) -> Path:
    """What a link points at: the course's reference, another student's work, /etc/shadow."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "reference.py").write_text("ANSWER = 42\n")
    return secret


def _layout_with_links(layout: str, root: Path, secret: Path) -> None:
    """Alice submits a real file and links a helper; Bob submits only a link (a linked folder where the layout
    has folders)."""
    target = secret / "reference.py"
    if layout == "files":
        (root / "alice.py").write_text("x = 1\n")
        (root / "bob.py").symlink_to(target)
    elif layout == "folders":
        (root / "alice").mkdir()
        (root / "alice" / "hw2.py").write_text("x = 1\n")
        (root / "alice" / "utils.py").symlink_to(target)
        (root / "bob").symlink_to(secret)
    elif layout == "moodle":
        alice = root / "Alice Smith_1001_assignsubmission_file_"
        alice.mkdir()
        (alice / "hw2.py").write_text("x = 1\n")
        (alice / "utils.py").symlink_to(target)
        (root / "Bob Jones_1002_assignsubmission_file_").symlink_to(secret)
    elif layout == "moodle-flat":
        (root / "Alice Smith_1001_assignsubmission_file_hw2.py").write_text("x = 1\n")
        (root / "Alice Smith_1001_assignsubmission_file_utils.py").symlink_to(target)
        (root / "Bob Jones_1002_assignsubmission_file_hw2.py").symlink_to(target)
    elif layout == "canvas":
        (root / "smithalice_1001_5_hw2.py").write_text("x = 1\n")
        (root / "smithalice_1001_6_utils.py").symlink_to(target)
        (root / "jonesbob_1002_7_hw2.py").symlink_to(target)
    else:
        (root / "submission_metadata.yml").write_text(
            "submission_501:\n  :submitters:\n  - :name: Alice Smith\n    :sid: 's001'\n"
            "submission_502:\n  :submitters:\n  - :name: Bob Jones\n    :sid: 's002'\n"
        )
        (root / "submission_501").mkdir()
        (root / "submission_501" / "hw2.py").write_text("x = 1\n")
        (root / "submission_501" / "utils.py").symlink_to(target)
        (root / "submission_502").symlink_to(secret)


@pytest.mark.parametrize(
    ("layout", "alice", "bob", "bob_link"),
    [
        ("files", "alice", "bob", "bob.py"),
        ("folders", "alice", "bob", "bob"),
        ("moodle", "Alice Smith (1001)", "Bob Jones (1002)", "Bob Jones_1002_assignsubmission_file_"),
        ("moodle-flat", "Alice Smith (1001)", "Bob Jones (1002)", "Bob Jones_1002_assignsubmission_file_hw2.py"),
        ("canvas", "smithalice (1001)", "jonesbob (1002)", "jonesbob_1002_7_hw2.py"),
        ("gradescope", "Alice Smith (s001)", "Bob Jones (s002)", "submission_502"),
    ],
)
def test_links_are_refused_in_every_layout_and_said(
    tmp_path: Path, layout: str, alice: str, bob: str, bob_link: str
) -> None:
    root = tmp_path / "class"
    root.mkdir()
    _layout_with_links(layout, root, _secret(tmp_path))
    d = discover([root], assignment="hw2")
    assert d.layouts == (layout.removesuffix("-flat"),)
    by_label = {e.student.label: e for e in d.entries}
    assert sorted(by_label) == sorted([alice, bob])
    # Alice is graded on her own file; her link is left out, in her entry and in what the TA reads.
    a = by_label[alice]
    assert not any(p.is_symlink() for p in a.files) and a.main.name.endswith("hw2.py" if layout != "files" else "alice.py")
    linked = layout != "files"
    assert a.refused == (("utils.py",) if linked else ())
    # Bob's only submission is a link: it is his entry, not followed (grading reports it unreadable).
    b = by_label[bob]
    assert (b.main, b.files) == (root / bob_link, (root / bob_link,))
    notices = [f"{root / bob_link} is a symbolic link: not followed; {bob} is graded as unreadable"]
    if linked:
        notices.append(f"{alice}: symbolic links are not followed; left out: utils.py")
    assert sorted(d.notices) == sorted(notices)
    staged = tmp_path / "work"
    stage(a, staged)
    assert [p.name for p in staged.rglob("*")] == [a.names[0]]  # nothing of the secret reaches the worker


def test_a_link_named_as_the_newest_upload_is_not_graded_instead(tmp_path: Path) -> None:
    (tmp_path / "secret.ipynb").write_text("{}")
    _nb(tmp_path / "class" / "smithalice_1001_5_hw2.ipynb")
    (tmp_path / "class" / "smithalice_1001_9_hw2-1.ipynb").symlink_to(tmp_path / "secret.ipynb")
    (entry,) = discover([tmp_path / "class"], assignment="hw2").entries
    assert (entry.main.name, entry.others, entry.refused) == ("smithalice_1001_5_hw2.ipynb", (), ("hw2-1.ipynb",))


def test_a_link_given_on_the_command_line_is_refused_and_said(tmp_path: Path) -> None:
    (tmp_path / "secret.py").write_text("ANSWER = 42\n")
    link = tmp_path / "leecarol_1003_5020_hw2.py"
    link.symlink_to(tmp_path / "secret.py")
    d = discover([link])
    assert d.notices == (f"{link} is a symbolic link: not followed; leecarol (1003) is graded as unreadable",)


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        # Moodle, flat: Alice uploads a file named as Bob's would be; the name is read from the left.
        (["Alice Smith_1001_assignsubmission_file_x_1002_assignsubmission_file_hw2.py",
          "Bob Jones_1002_assignsubmission_file_hw2.py"],
         [("1001", "Alice Smith", ("x_1002_assignsubmission_file_hw2.py",)), ("1002", "Bob Jones", ("hw2.py",))]),
        # Canvas: Alice uploads `jonesbob_1002_9_hw2.py`; the first user and attachment ids are Canvas's.
        (["smithalice_1001_5_jonesbob_1002_9_hw2.py", "jonesbob_1002_7_hw2.py"],
         [("1001", "smithalice", ("jonesbob_1002_9_hw2.py",)), ("1002", "jonesbob", ("hw2.py",))]),
        # Canvas, late: the ids after the name and its LATE are still the ones read.
        (["smithalice_late_1001_5_late_1002_9_hw2.py", "jonesbob_1002_7_hw2.py"],
         [("1001", "smithalice", ("late_1002_9_hw2.py",)), ("1002", "jonesbob", ("hw2.py",))]),
    ],
)
def test_a_decoy_file_name_stays_its_students(
    tmp_path: Path, names: list[str], expected: list[tuple[str, str, tuple[str, ...]]]
) -> None:
    for name in names:
        (tmp_path / name).write_text("x = 1\n")
    d = discover([tmp_path])
    assert sorted((e.student.key, e.student.name, e.names) for e in d.entries) == expected
    for name, (key, _, _) in zip(names, expected):  # one file alone, and what its path says, agree
        assert discover([tmp_path / name]).entries[0].student.key == key
        assert identify(tmp_path / name).key == key


def test_an_anonymous_canvas_decoy_stays_its_students(tmp_path: Path) -> None:
    (tmp_path / "1003_8_1002_9_hw2.py").write_text("x = 1\n")  # anonymous grading: the ids come first
    (entry,) = discover([tmp_path], "canvas").entries
    assert (entry.student.key, entry.names) == ("1003", ("1002_9_hw2.py",))


def test_a_moodle_folder_decoy_stays_its_students(tmp_path: Path) -> None:
    folder = tmp_path / "Alice Smith_1001_assignsubmission_file_"
    _nb(folder / "Bob Jones_1002_assignsubmission_file_hw2.ipynb")
    _nb(tmp_path / "Bob Jones_1002_assignsubmission_file_" / "hw2.ipynb")
    d = discover([tmp_path], assignment="hw2")
    assert sorted((e.student.key, e.names) for e in d.entries) == [
        ("1001", ("Bob Jones_1002_assignsubmission_file_hw2.ipynb",)), ("1002", ("hw2.ipynb",)),
    ]
    assert identify(folder / "Bob Jones_1002_assignsubmission_file_hw2.ipynb").key == "1001"


# -- Gradescope's metadata: a safe loader, bounded; a bad record is its submission's problem -----------------------

_BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x]"]
    + [f"{b}: &{b} [{', '.join(['*' + a] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi")]
    + ["submission_1:", "  :submitters:", "  - :name: *i", ""]
)


def test_a_metadata_alias_bomb_is_refused_bounded(tmp_path: Path) -> None:
    import tracemalloc

    assert len(_BOMB.encode()) < 700  # 9 ** 9 names once expanded
    (tmp_path / "submission_metadata.yml").write_text(_BOMB)
    _nb(tmp_path / "submission_1" / "hw2.ipynb")
    tracemalloc.start()
    try:
        d = discover([tmp_path])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20
    assert [e.student.key for e in d.entries] == ["submission_1"]
    assert d.notices == (
        f"{tmp_path}/submission_metadata.yml: its aliases expand to more than 8,388,608 values and characters "
        "(a YAML alias bomb?); every submission is graded all the same, named by its folder",
    )


def test_a_python_tag_in_metadata_is_that_submissions_problem_only(tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    (tmp_path / "submission_metadata.yml").write_text(
        "submission_1:\n  :submitters:\n  - :name: Alice Smith\n    :sid: 's001'\n"
        f"submission_2:\n  :submitters:\n  - :name: !!python/object/apply:os.system ['touch {ran}']\n"
    )
    _nb(tmp_path / "submission_1" / "hw2.ipynb")
    _nb(tmp_path / "submission_2" / "hw2.ipynb")
    d = discover([tmp_path])
    assert not ran.exists()
    assert [(e.student.key, e.student.name) for e in d.entries] == [("s001", "Alice Smith"), ("submission_2", "")]
    (notice,) = d.notices
    assert notice.startswith(f"{tmp_path}/submission_metadata.yml: the record of submission_2 is not readable "
                             "(could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply")
    assert notice.endswith("; submission_2 is graded all the same, named by its folder")


def test_escapes_in_lms_names_are_dropped(tmp_path: Path) -> None:
    (tmp_path / "submission_metadata.yml").write_text(
        'submission_1:\n  :submitters:\n  - :name: "Eve\\e]0;pwned\\aSmith"\n    :sid: "s0\\e[2J05"\n'
    )
    _nb(tmp_path / "submission_1" / "hw2.ipynb")
    (entry,) = discover([tmp_path]).entries
    assert (entry.student.name, entry.student.sid) == ("Eve]0;pwnedSmith", "s0[2J05")


@pytest.mark.parametrize(
    ("folder", "metadata", "key"),
    [
        ("alice", None, "alice"),  # folders: the folder is the student
        ("Alice Smith_1001_assignsubmission_file_", None, "1001"),  # Moodle's folder
        ("submission_501", "submission_501:\n  :submitters:\n  - :name: Alice Smith\n    :sid: 's001'\n", "s001"),
    ],
)
@pytest.mark.parametrize(
    "decoy", ["jonesbob_1002_7_hw2.ipynb", "Bob Jones_1002_assignsubmission_file_hw2.ipynb"]
)
def test_a_file_named_like_anothers_inside_a_students_folder_stays_theirs(
    tmp_path: Path, folder: str, metadata: str | None, key: str, decoy: str
) -> None:
    if metadata:
        (tmp_path / "submission_metadata.yml").write_text(metadata)
    path = _nb(tmp_path / folder / decoy)
    (entry,) = discover([tmp_path], assignment="hw2").entries
    assert (entry.student.key, entry.names) == (key, (decoy,))
    if folder != "alice":  # an LMS's folder says who it is even when the file is given alone, or read back later
        assert discover([path]).entries[0].student.key == key
        assert identify(path).key == key


def test_a_moodle_flat_name_ending_like_a_canvas_one_stays_its_students(tmp_path: Path) -> None:
    path = _nb(tmp_path / "Alice Smith_1001_assignsubmission_file_jonesbob_1002_7_hw2.ipynb")
    assert [e.student.key for e in discover([tmp_path]).entries] == ["1001"]
    assert discover([path]).entries[0].student.key == identify(path).key == "1001"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("a: &a [*a]\nsubmission_1: {}\n", "its aliases expand to more than 8,388,608 values and characters (a YAML alias bomb?)"),
        ("submission_1: " + "[" * 50_000 + "]" * 50_000 + "\n", "nested too deeply to be metadata"),
        ("- submission_1\n", "expected a mapping of submission folders to their submitters"),
    ],
)
def test_a_recursive_deep_or_odd_metadata_file_is_said_and_the_batch_goes_on(tmp_path: Path, text: str, why: str) -> None:
    (tmp_path / "submission_metadata.yml").write_text(text)
    _nb(tmp_path / "submission_1" / "hw2.ipynb")
    d = discover([tmp_path])
    assert [e.student.key for e in d.entries] == ["submission_1"]
    assert d.notices == (
        f"{tmp_path}/submission_metadata.yml: {why}; every submission is graded all the same, named by its folder",
    )


def test_one_file_named_like_moodles_does_not_make_a_class_moodles(tmp_path: Path) -> None:
    for name in ("1001_5_assignsubmission_file_hw2.py", "1002_7_hw2.py", "1003_8_hw2.py"):
        (tmp_path / name).write_text("x = 1\n")
    assert detect_layout(tmp_path) == "files"  # anonymous Canvas names carry no name part to recognise them by
    d = discover([tmp_path], "canvas")
    assert sorted((e.student.key, e.names) for e in d.entries) == [
        ("1001", ("assignsubmission_file_hw2.py",)), ("1002", ("hw2.py",)), ("1003", ("hw2.py",)),
    ]
