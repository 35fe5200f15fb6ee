from __future__ import annotations

from pathlib import Path

import pytest

from grader.sources.roster import Identity, Roster, RosterError, name_keys

LMS = Path(__file__).resolve().parents[1] / "data" / "lms"


def test_the_shipped_roster() -> None:
    r = Roster.load(LMS / "roster.csv")
    assert len(r) == 4
    alice = r.students[0]
    assert (alice.key, alice.name, alice.sid, alice.email) == ("s001", "Alice Smith", "s001", "alice@example.edu")
    assert alice.lms_ids == {"canvas_id": "1001", "moodle_id": "1001", "sis_login_id": "asmith", "section": "L01"}


@pytest.mark.parametrize(
    "header",
    [
        "sid,name,email,canvas_id",
        "Student ID,Full Name,Email Address,Canvas User ID",
        "STUDENT_NUMBER, Student Name ,E-mail,canvas-id",
        "\ufeffID Number,Student,email,CANVAS_ID",  # Excel's BOM and Moodle's spelling
    ],
)
def test_header_names_are_case_and_spacing_insensitive(header: str) -> None:
    r = Roster.parse(f"{header}\ns1,Ann Lee,ann@x.edu,77\n")
    (ann,) = r.students
    assert (ann.sid, ann.name, ann.email, ann.lms_ids) == ("s1", "Ann Lee", "ann@x.edu", {"canvas_id": "77"})


def test_canvas_gradebook_export_works_as_a_roster() -> None:
    text = (
        "Student,ID,SIS User ID,SIS Login ID,Section,hw1 (5)\n"
        "    Points Possible,,,,,10\n"
        '"Smith, Alice",1001,S001,asmith,L01,9\n'
    )
    (alice,) = Roster.parse(text).students
    assert alice.lms_ids == {"canvas_id": "1001", "sis_user_id": "S001", "sis_login_id": "asmith", "section": "L01"}
    assert (alice.key, alice.sid) == ("S001", "S001")  # the SIS User ID is the student id


def test_a_bare_id_column_is_not_guessed() -> None:
    with pytest.raises(RosterError, match=r"r\.csv: row 1: no known column"):
        Roster.parse("id,score\n1,2\n", "r.csv")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"r\.csv: empty"),
        ("sid,name\ns1,Ann\ns1,Bob\n", r"r\.csv: row 3: sid 's1' is already the student of row 2"),
        ("email,name\nann@x.edu,Ann\nANN@x.edu,Bob\n", r"row 3: email 'ann@x.edu' is already"),
        ("sid,email\ns1,not-an-email\n", r"row 2: email 'not-an-email' has no '@'"),
        ("sid,name,section\n,,L01\n", r"row 2: no sid, email, LMS id or name"),
        ("sid,student id\n1,2\n", r"row 1: two columns mean sid"),
    ],
)
def test_errors_name_the_file_and_row(text: str, message: str) -> None:
    with pytest.raises(RosterError, match=message):
        Roster.parse(text, "r.csv")


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(RosterError, match="no such roster file"):
        Roster.load(tmp_path / "nope.csv")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("name\nJos\xe9\n".encode("latin-1"))
    with pytest.raises(RosterError, match=r"latin1\.csv: not UTF-8"):
        Roster.load(bad)


def test_blank_rows_are_skipped() -> None:
    assert len(Roster.parse("sid,name\ns1,Ann\n,\n\ns2,Bob\n")) == 2


ROSTER = Roster.parse(
    "sid,name,email,canvas_id\n"
    "s1,Ann Lee,ann@x.edu,10\n"
    "s2,Bob Ray,bob@x.edu,20\n"
    "s3,Kim Park,kim1@x.edu,30\n"
    "s4,Kim Park,kim2@x.edu,40\n"
)


@pytest.mark.parametrize(
    ("probe", "expected"),
    [
        (Identity("x", lms_ids={"canvas_id": "20"}, sid="s1"), "s2"),  # an LMS id first
        (Identity("x", sid="s1", email="bob@x.edu"), "s1"),  # then the sid
        (Identity("x", email="BOB@X.EDU", name="Ann Lee"), "s2"),  # then the email, any case
        (Identity("x", name="Lee, Ann"), "s1"),  # then the name, either order
        (Identity("x", name="leeann"), "s1"),  # as Canvas writes it in file names
        (Identity("x", name="Kim Park"), None),  # a name two students share identifies neither
        (Identity("x", name="Nobody"), None),
    ],
)
def test_match_order(probe: Identity, expected: str | None) -> None:
    found = ROSTER.match(probe)
    assert (found.key if found else None) == expected


def test_merged_keeps_the_submissions_ids() -> None:
    merged = ROSTER.merged(Identity("501", sid="s1", lms_ids={"gradescope_id": "501"}))
    assert merged is not None and merged.key == "s1"
    assert merged.lms_ids == {"gradescope_id": "501", "canvas_id": "10"}


def test_name_keys() -> None:
    assert name_keys("Alice Smith") == {"alicesmith", "smithalice"}
    assert "smithalice" in name_keys("Smith, Alice")
    assert name_keys("  ") == set()


def test_identity_round_trips() -> None:
    i = Identity("s1", "Ann", "s1", "ann@x.edu", {"canvas_id": "10"})
    assert Identity.from_dict(i.serialize()) == i
    assert i.label == "Ann (s1)"
