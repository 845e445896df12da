"""Just enough of Docker's semantics to check the Dockerfile and .dockerignore without a Docker daemon: instructions
and stages as BuildKit's parser sees them, and which files the build context holds."""

import json
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    arguments: str
    line: int

    def flags(self) -> dict[str, str]:
        """`--name=value` options before the arguments proper (COPY --from=..., RUN --mount=...), the last of each."""
        return {name: value for name, value in (flag.split("=", 1) for flag in self.flag_list() if "=" in flag)}

    def flag_list(self) -> list[str]:
        """The leading `--...` options, without their dashes, in order."""
        flags = []
        for word in self.arguments.split():
            if not word.startswith("--"):
                break
            flags.append(word[2:])
        return flags

    def operands(self) -> list[str]:
        """The arguments after the options: for COPY, the sources and the destination; JSON form understood."""
        rest = self.arguments.split(maxsplit=len(self.flag_list()))[len(self.flag_list()) :]
        text = rest[0] if rest else ""
        if text.lstrip().startswith("["):
            words: list[str] = json.loads(text)
            return words
        return shlex.split(text)

    def exec_form(self) -> list[str] | None:
        """The JSON (exec) form of CMD / ENTRYPOINT, or None for the shell form."""
        text = self.arguments.strip()
        return list(json.loads(text)) if text.startswith("[") else None

    def env(self) -> dict[str, str]:
        """ENV's pairs: `ENV A=1 B="two words"`, or the legacy `ENV A value`."""
        words = shlex.split(self.arguments)
        if words and "=" not in words[0]:
            return {words[0]: " ".join(words[1:])}
        return dict(word.split("=", 1) for word in words)


@dataclass
class Stage:
    name: str | None
    base: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [instruction for instruction in self.instructions if instruction.keyword == keyword]


@dataclass
class Dockerfile:
    text: str
    global_args: dict[str, str | None]
    stages: list[Stage]

    @classmethod
    def read(cls, path: Path = ROOT / "Dockerfile") -> "Dockerfile":
        text = path.read_text(encoding="utf-8")
        global_args: dict[str, str | None] = {}
        stages: list[Stage] = []
        for instruction in parse(text):
            if instruction.keyword == "FROM":
                words = [word for word in instruction.arguments.split() if not word.startswith("--")]
                name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
                stages.append(Stage(name=name, base=words[0]))
            elif not stages:
                if instruction.keyword != "ARG":
                    raise ValueError(f"line {instruction.line}: only ARG may come before the first FROM")
                arg_name, _, default = instruction.arguments.partition("=")
                global_args[arg_name.strip()] = default.strip() if default else None
            else:
                stages[-1].instructions.append(instruction)
        return cls(text=text, global_args=global_args, stages=stages)

    @cached_property
    def by_name(self) -> dict[str, Stage]:
        return {stage.name: stage for stage in self.stages if stage.name}

    def chain(self, target: str) -> list[Stage]:
        """The stage `target` and the stages it is built FROM, base first."""
        chain = [self.by_name[target]]
        while chain[0].base in self.by_name:
            chain.insert(0, self.by_name[chain[0].base])
        return chain

    def effective(self, target: str, keyword: str) -> list[Instruction]:
        return [instruction for stage in self.chain(target) for instruction in stage.all(keyword)]

    def env(self, target: str) -> dict[str, str]:
        env: dict[str, str] = {}
        for instruction in self.effective(target, "ENV"):
            env |= instruction.env()
        return env

    def user(self, target: str) -> str | None:
        users = self.effective(target, "USER")
        return users[-1].arguments.strip() if users else None


def parse(text: str) -> list[Instruction]:
    """Instructions with their continuation lines joined and comment lines dropped, as BuildKit reads them."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        line = " ".join(part.strip() for part in pending if part.strip())
        pending = []
        keyword, _, arguments = line.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
    if pending:
        raise ValueError(f"line {start}: the last instruction ends with a line continuation")
    return instructions


# --- .dockerignore ---------------------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go's filepath.Match plus `**`) as a regular expression over a relative path."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            body = pattern[i + 1 : end]
            out, i = out + "[" + ("^" + body[1:] if body.startswith("!") else body) + "]", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


@dataclass(frozen=True)
class DockerIgnore:
    rules: tuple[tuple[bool, re.Pattern[str]], ...]  # (is an exception `!...`, pattern)

    @classmethod
    def read(cls, path: Path = ROOT / ".dockerignore") -> "DockerIgnore":
        rules = []
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exception = line.startswith("!")
            pattern = line[1:].strip() if exception else line
            pattern = str(Path(pattern)).lstrip("/")  # Docker cleans each pattern (filepath.Clean)
            rules.append((exception, _pattern_regex(pattern)))
        return cls(tuple(rules))

    def included(self, relative: str) -> bool:
        """Whether the file at this path (relative to the context, `/`-separated) is sent to the build.

        As moby's patternmatcher: a pattern matching the path or one of its parent directories decides, the last
        such pattern wins, and `!` makes it an exception that puts the file back."""
        parts = relative.split("/")
        candidates = ["/".join(parts[:depth]) for depth in range(1, len(parts) + 1)]
        included = True
        for exception, regex in self.rules:
            if any(regex.match(candidate) for candidate in candidates):
                included = exception
        return included


def repository_files(root: Path = ROOT) -> list[str]:
    """Files of the work tree that git does not ignore (tracked or not)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return sorted({name for name in listed.split("\0") if name and (root / name).is_file()})


def build_context(root: Path = ROOT) -> list[str]:
    """The files `docker build` sends from the repository root."""
    ignore = DockerIgnore.read(root / ".dockerignore")
    return [name for name in repository_files(root) if ignore.included(name)]
