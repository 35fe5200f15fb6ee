"""The kit file: what a student may hold about the public questions, validated in one place.

A kit is a zip of `kit.json` (the manifest below), `arrays/<n>.bin` (raw little-endian bytes of the test
inputs and expected outputs, whose dtype and shape the manifest gives) and `handout/...` (the course's handout
files, which students already have: the rubric's `handout:`).  Nothing in it is executable: values
are the worker codec's plain data (`grader.worker.codec`), decoded without running code, never pickle.
A kit never holds reference code, an expected formula, or anything of a hidden question.
"""
from __future__ import annotations

import atexit
import base64
import hashlib
import io
import json
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, field_validator

from grader.errors import GraderError
from grader.rubric.handout import HandoutFile, safe_relative
from grader.rubric.kinds import find_kind, kind_names, load
from grader.rubric.options import ForbidOptions, SymbolDomain, TrainingOptions, ValueOptions
from grader.rubric.schema import Limits
from grader.worker import codec

FORMAT = "dl-grader-kit"
VERSION = 1
MANIFEST = "kit.json"
HANDOUT_DIR = "handout"
MAX_KIT_BYTES = 64 * 2**20  # a kit holds small test inputs; anything larger is not one of ours
_ARRAY_TAGS = ("$tensor", "$ndarray")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def serialize(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        return cls.model_validate(data)


class Case(_Model):
    """One call: the arguments in the student's positional order (named as the handout names them), and the
    reference's output on them; both in the worker codec's encoding."""

    names: list[str]
    args: list[Any]
    expected: Any
    label: str = ""  # the author's label of the case (`case("tied maxima", ...)`), shown before its inputs
    # Per post-condition (`after`), the reference's argument after its call, or its selected items.
    after: dict[str, Any] = Field(default_factory=dict)


class CheckRecord(_Model):
    """What a kit holds to check one public question: each kind's own record (its registry entry's `kit_record`),
    told apart by `kind`.  A record gives the check it is run with the options that check reads."""

    kind: str

    def check_options(self) -> BaseModel:
        """The options the question's check reads: the record itself, where a kit counterpart of the check reads it."""
        return self

    def reference_values(self, answer: str) -> dict[str, Any]:
        """Attributes of the stand-in reference module the check reads (the expected value of a `value` question)."""
        return {}

    def stored_values(self) -> list[Any]:
        """Every stored value in the codec's encoding, checked to decode when the kit is read."""
        return []


class FunctionData(CheckRecord):
    kind: Literal["function"] = "function"
    cases: list[Case] = Field(min_length=1)
    rtol: float
    atol: float
    pure: bool = False
    partial: bool = False
    output: list[int | str] | None = None  # the selected items of the result; `expected` is their tuple
    after: dict[str, list[int | str] | None] = Field(default_factory=dict)

    def stored_values(self) -> list[Any]:
        return [v for case in self.cases for v in (*case.args, case.expected, *case.after.values())]


class GradientData(CheckRecord):
    kind: Literal["gradient"] = "gradient"
    cases: list[Case] = Field(min_length=1)  # `expected`: autograd's gradient through the reference forward
    max_rel_error: float

    def stored_values(self) -> list[Any]:
        return [v for case in self.cases for v in (*case.args, case.expected, *case.after.values())]


class ValueData(CheckRecord):
    kind: Literal["value"] = "value"
    expected: Any
    rtol: float
    atol: float

    def check_options(self) -> BaseModel:
        return ValueOptions(rtol=self.rtol, atol=self.atol)  # the expected value comes from `reference_values`

    def reference_values(self, answer: str) -> dict[str, Any]:
        # `ValueCheck` reads the expected value as the reference's attribute of the answer's name, as in grading.
        return {answer: decoded(self.expected)}

    def stored_values(self) -> list[Any]:
        return [self.expected]


class FormulaData(CheckRecord):
    """The domain and, per sample point, a salted hash of the expected value (see `grader.kit.hashing`)."""

    kind: Literal["formula"] = "formula"
    symbols: list[tuple[str, SymbolDomain]]  # in the question's order, which is the order of each point
    constraints: list[str] = Field(default_factory=list)
    salt: str
    points: list[list[int]] = Field(min_length=1)
    hashes: list[str] = Field(min_length=1)
    rtol: float = 1e-9


class ForbidData(CheckRecord):
    kind: Literal["forbid"] = "forbid"
    apis: list[str] = Field(min_length=1)
    function: str | None = None

    def check_options(self) -> BaseModel:
        return ForbidOptions(apis=self.apis, function=self.function)


class TrainingData(CheckRecord):
    """The data recipe (its seed resolved) and the tiers: the student's trainer runs, the kit scores."""

    kind: Literal["training"] = "training"
    options: TrainingOptions

    def check_options(self) -> BaseModel:
        return self.options


class NotChecked(CheckRecord):
    """A public question the kit cannot check without reference code or a TA (its kind has no `kit_record`)."""

    reason: str


def _record(value: Any) -> Any:
    """A stored question's record, read as its kind's `kit_record` (NotChecked for a kind kits do not check)."""
    if not isinstance(value, dict):
        return value
    kind = value.get("kind")
    spec = find_kind(kind) if isinstance(kind, str) else None
    if spec is None:
        raise ValueError(f"unknown check kind {kind!r} (known: {', '.join(sorted(kind_names()))})")
    model = NotChecked if spec.kit_record is None else load(spec.kit_record)
    return model.model_validate(value)


class KitQuestion(_Model):
    id: str = Field(pattern=r"^q\d+(\.\d+)*$")
    title: str
    points: float = Field(ge=0)
    answer: str | None = None
    timeout: float | None = Field(None, gt=0)
    forbid: list[str] = Field(default_factory=list)
    check: SerializeAsAny[CheckRecord]

    @field_validator("check", mode="before")
    @classmethod
    def _read_check(cls, value: Any) -> Any:
        return _record(value)

    @property
    def kind(self) -> str:
        return self.check.kind

    @property
    def checked(self) -> bool:
        return not isinstance(self.check, NotChecked)


class KitFile(_Model):
    format: Literal["dl-grader-kit"] = "dl-grader-kit"
    version: Literal[1] = 1
    assignment: str
    title: str = ""
    grader_version: str
    rubric_sha256: str  # which rubric made the kit, for a TA; a hash tells a student nothing
    seed: int
    limits: Limits
    total: float  # every point of the assignment, hidden and TA-graded ones included
    hidden_points: float = 0.0
    hidden_questions: int = 0
    questions: list[KitQuestion]
    # The course's handout (public: students have it) as `handout/<name>` members, and the packages the
    # students' code needs beyond the grader's (the rubric's `requires:`).
    handout: list[str] = Field(default_factory=list)
    requires: list[str] = Field(default_factory=list)

    def question(self, qid: str) -> KitQuestion:
        for q in self.questions:
            if q.id == qid:
                return q
        known = ", ".join(q.id for q in self.questions)
        raise GraderError(f"the kit has no public question {qid} (it has {known})")


# -- the zip file ------------------------------------------------------------------------------------------------


def write_kit(kit: KitFile, path: Path, handout: Sequence[HandoutFile] = ()) -> int:
    """Write `kit` to `path` (a zip) with the handout's files; returns its size in bytes.  Same kit, same bytes
    (fixed timestamps)."""
    arrays: list[bytes] = []
    kit = kit.model_copy(update={"handout": [f.name for f in handout]})
    manifest = _move_arrays(kit.serialize(), arrays)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(_member(MANIFEST), json.dumps(manifest, indent=1))
        for i, data in enumerate(arrays):
            zf.writestr(_member(f"arrays/{i}.bin"), data)
        for f in handout:
            zf.writestr(_member(f"{HANDOUT_DIR}/{f.name}"), f.path.read_bytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return len(buffer.getvalue())


def read_kit(path: str | Path) -> KitFile:
    """Load and validate a kit; anything wrong with the file is one GraderError line naming it."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            members = {info.filename: info for info in zf.infolist()}
            if sum(info.file_size for info in members.values()) > MAX_KIT_BYTES:
                raise GraderError(f"{path}: too large to be a kit")
            if MANIFEST not in members:
                raise GraderError(f"{path}: not a dl-grader kit (no {MANIFEST} inside)")
            manifest = json.loads(zf.read(MANIFEST))
            if not isinstance(manifest, dict):
                raise GraderError(f"{path}: not a dl-grader kit ({MANIFEST} is not an object)")
            _check_header(path, manifest)
            data = _restore_arrays(manifest, zf, set(members))
    except FileNotFoundError:
        raise GraderError(f"kit file not found: {path}") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise GraderError(f"{path}: not a dl-grader kit (not a readable zip file: {exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, ValueError) as exc:
        raise GraderError(f"{path}: damaged kit ({exc})") from None
    try:
        kit = KitFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise GraderError(f"{path}: invalid kit: {where}: {err['msg']}") from None
    _decode_all(path, kit)
    return kit


_EXTRACTED: dict[tuple[str, str], tuple[HandoutFile, ...]] = {}  # (kit path, rubric sha) -> files, per process


def kit_handout(kit: KitFile, path: str | Path) -> tuple[HandoutFile, ...]:
    """The kit's handout files, extracted once per process into a private temporary folder (names checked:
    nothing lands outside it)."""
    if not kit.handout:
        return ()
    key = (str(Path(path).resolve()), kit.rubric_sha256)
    if key in _EXTRACTED:
        return _EXTRACTED[key]
    folder = Path(tempfile.mkdtemp(prefix="grader-kit-handout-"))
    atexit.register(shutil.rmtree, folder, True)
    files = []
    try:
        with zipfile.ZipFile(path) as zf:
            for name in kit.handout:
                rel = safe_relative(name)
                if rel is None:
                    raise GraderError(f"{path}: damaged kit: handout file name {name!r}")
                data = zf.read(f"{HANDOUT_DIR}/{name}")
                target = folder / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                files.append(HandoutFile(rel.as_posix(), target, hashlib.sha256(data).hexdigest(), len(data)))
    except (KeyError, zipfile.BadZipFile, OSError) as exc:
        raise GraderError(f"{path}: damaged kit: its handout cannot be read ({exc})") from None
    _EXTRACTED[key] = tuple(files)
    return _EXTRACTED[key]


def decoded(value: Any) -> Any:
    """A stored value as the checks compare it (tensors as torch tensors), built without running code."""
    return codec.decode(value)


def _decode_all(path: Path, kit: KitFile) -> None:
    """Every stored value decodes, or the kit is damaged: said once at load, not mid-check."""
    for q in kit.questions:
        try:
            for value in q.check.stored_values():
                decoded(value)
        except (codec.CodecError, ValueError, TypeError) as exc:
            raise GraderError(f"{path}: damaged kit: {q.id}: {exc}") from None


def _check_header(path: Path, manifest: dict[str, Any]) -> None:
    """A kit of another format or a newer version gets its own message, not a list of schema errors."""
    if manifest.get("format") != FORMAT:
        raise GraderError(f"{path}: not a dl-grader kit (format {manifest.get('format')!r})")
    if manifest.get("version") != VERSION:
        raise GraderError(
            f"{path}: kit format version {manifest.get('version')!r}; this grader reads version {VERSION} "
            "(ask for a kit made by this grader version, or upgrade dl-grader)"
        )


def _member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16  # plain data, never executable
    return info


def _move_arrays(node: Any, arrays: list[bytes]) -> Any:
    """The codec's base64 array payloads, moved out into raw members: `{"$tensor": {..., "file": n}}`."""
    if isinstance(node, list):
        return [_move_arrays(v, arrays) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((tag, body),) = node.items()
        if tag in _ARRAY_TAGS and isinstance(body, dict) and "data" in body:
            arrays.append(base64.b64decode(body["data"]))
            rest = {k: v for k, v in body.items() if k != "data"}
            return {tag: {**rest, "file": len(arrays) - 1}}
    return {k: _move_arrays(v, arrays) for k, v in node.items()}


def _restore_arrays(node: Any, zf: zipfile.ZipFile, members: set[str]) -> Any:
    if isinstance(node, list):
        return [_restore_arrays(v, zf, members) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((tag, body),) = node.items()
        if tag in _ARRAY_TAGS and isinstance(body, dict) and "file" in body:
            name = f"arrays/{body['file']}.bin"
            if name not in members:
                raise ValueError(f"{name} is missing")
            rest = {k: v for k, v in body.items() if k != "file"}
            return {tag: {**rest, "data": base64.b64encode(zf.read(name)).decode("ascii")}}
    return {k: _restore_arrays(v, zf, members) for k, v in node.items()}
