"""Every script tests its own worktree's code, whatever the development installs of the
environment point at: real editable installs in a real virtualenv, real git worktrees."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest

from pytest_parallel_hypotheses import (
    FalsificationConfig,
    Hypothesis,
    TestExecutionResult,
    TestExecutor,
    cli,
)
from pytest_parallel_hypotheses.core.classification import HypothesisStatus
from pytest_parallel_hypotheses.core.tested import NoTestRun, ran_no_tests
from pytest_parallel_hypotheses.engine import imports
from pytest_parallel_hypotheses.engine.runs import HypothesisRun
from pytest_parallel_hypotheses.finding.installs import (
    _extension_name,
    _extensions,
    development_installs,
)
from pytest_parallel_hypotheses.report.tested import code_summary, run_warnings
from tests.conftest import git

RunPytest = Callable[..., pytest.RunResult]
WriteScript = Callable[..., Path]

#: Three ways of laying out a package, each its own distribution in one repository.
PACKAGES = {
    "srcpkg": "srcdist/src/srcpkg",
    "flatpkg": "flatdist/flatpkg",
    "acme.tools": "nsdist/acme/tools",
}

PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"
[project]
name = "{name}"
version = "0.1"
[project.scripts]
{name}-where = "{module}:where"
"""

INIT = """\
VALUE = "{value}"


def where():
    print(__file__)
"""


def _write_project(repo: Path) -> None:
    for module, folder in PACKAGES.items():
        distribution = folder.split("/")[0]
        (repo / folder).mkdir(parents=True)
        (repo / folder / "__init__.py").write_text(INIT.format(value="buggy"))
        (repo / folder / "__main__.py").write_text(f"from {module} import where\nwhere()\n")
        name = distribution.replace("dist", "pkg")
        (repo / distribution / "pyproject.toml").write_text(
            PYPROJECT.format(name=name, module=module)
        )
    (repo / "nsdist" / "pyproject.toml").write_text(
        PYPROJECT.format(name="acme-tools", module="acme.tools")
        + '[tool.setuptools.packages.find]\ninclude = ["acme*"]\nnamespaces = true\n'
    )
    (repo / "copydist" / "copypkg").mkdir(parents=True)
    (repo / "copydist" / "copypkg" / "__init__.py").write_text(INIT.format(value="buggy"))
    (repo / "copydist" / "pyproject.toml").write_text(
        PYPROJECT.format(name="copypkg", module="copypkg")
    )
    (repo / "rendist" / "lib" / "code").mkdir(parents=True)
    (repo / "rendist" / "lib" / "code" / "__init__.py").write_text(INIT.format(value="buggy"))
    (repo / "rendist" / "pyproject.toml").write_text(
        PYPROJECT.format(name="renpkg", module="renamed")
        + '[tool.setuptools]\npackages = ["renamed"]\n'
        + '[tool.setuptools.package-dir]\nrenamed = "lib/code"\n'
    )


def _set_value(repo: Path, value: str) -> None:
    for folder in PACKAGES.values():
        (repo / folder / "__init__.py").write_text(INIT.format(value=value))


#: pip's arguments for an install from local folders only: no network, no build isolation.
OFFLINE_INSTALL = ["-m", "pip", "install", "-q", "--no-index", "--no-build-isolation", "--no-deps"]


def make_virtualenv(venv: Path) -> Path:
    """A real virtualenv at ``venv``, with pip; its Python."""
    subprocess.run(
        [sys.executable, "-m", "virtualenv", "-q", "--no-periodic-update", str(venv)], check=True
    )
    return venv / "bin" / "python"


def venv_with(venv: Path, *install: str) -> Path:
    """A real virtualenv at ``venv`` with ``install`` (pip's arguments) installed from local
    folders; its Python."""
    python = make_virtualenv(venv)
    subprocess.run([str(python), *OFFLINE_INSTALL, *install], check=True, capture_output=True)
    return python


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository of three packages (``src/``, flat, namespace) installed in development
    mode, one more under another folder name (``package_dir``), and one installed as a plain
    copy, into a virtualenv made for the tests. Its
    branch ``fixed`` fixes them; its main checkout holds uncommitted edits."""
    root = tmp_path_factory.mktemp("installed")
    repo = root / "project"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    _write_project(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "buggy")
    git(repo, "checkout", "-q", "-b", "fixed")
    _set_value(repo, "fixed")
    git(repo, "commit", "-q", "-am", "the fix")
    git(repo, "checkout", "-q", "main")
    venv = root / "venv"
    install = [str(make_virtualenv(venv)), *OFFLINE_INSTALL, "./copydist"]
    for folder in [*PACKAGES.values(), "rendist"]:
        install += ["-e", f"./{folder.split('/')[0]}"]
    subprocess.run(install, cwd=repo, check=True, capture_output=True)
    _set_value(repo, "edited in the main checkout, not committed")
    built = repo / PACKAGES["srcpkg"] / f"_speedups{EXTENSION_SUFFIXES[0]}"
    built.write_bytes(b"")  # as a build in place leaves it: untracked, never in a worktree
    return repo


@pytest.fixture
def venv_first(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test virtualenv first on ``PATH``, as an activated environment would be."""
    bin_folder = project.parent / "venv" / "bin"
    monkeypatch.setenv("PATH", f"{bin_folder}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)


@pytest.fixture
def worktree(project: Path, tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    """``worktree(name, commit)``: a worktree of the project at ``commit``, removed after."""
    made: List[Path] = []

    def make(name: str, commit: str) -> Path:
        path = tmp_path / name
        git(project, "worktree", "add", "-q", "--detach", str(path), commit)
        made.append(path)
        return path

    yield make
    for path in made:
        git(project, "worktree", "remove", "--force", str(path))


def run_one(worktree: Path, write_script: WriteScript, body: str) -> TestExecutionResult:
    write_script(worktree, "h", body)
    return TestExecutor().execute_single(Hypothesis("h", "the bug"), worktree)


WAYS = {
    "python -c": 'python -c "import {module} as m; m.where()"',
    "python -m": "python -m {module}",
    "python file.py": "python .falsification/where.py",
    "console script": "{name}-where",
}


#: Scripts whose Python has no module they ask it to run, as CPython says it.
MISSING_RUNNERS = {
    "a module": f"{sys.executable} -m no_such_runner_here tests",
    "a module of a missing package": f"{sys.executable} -m no_such_package_here.runner",
}


@pytest.mark.parametrize("runner", sorted(MISSING_RUNNERS))
def test_a_script_whose_python_lacks_the_module_it_runs_is_inconclusive(
    git_repo: Path, write_script: WriteScript, runner: str
) -> None:
    """A worktree's .venv without pytest: ``python -m pytest`` exits 1 having run no test."""
    result = run_one(git_repo, write_script, MISSING_RUNNERS[runner])

    assert result.status is HypothesisStatus.INCONCLUSIVE
    assert "no_such_" in result.error_message
    assert "no test ran" in result.error_message


#: pytest runs that select no test of a worktree holding one test, ``test_one.py::test_one``.
SELECTING_NOTHING = {
    "a mistyped test id": "test_one.py::test_onw",
    "a -k expression that matches nothing": "-k nothing test_one.py",
    "a path the worktree does not have": "test_two.py",
}
RUN_PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider -p no:randomly"
#: A test module of one test that passes.
PASSING_TEST = "def test_one():\n    pass\n"


def pytest_over(
    git_repo: Path, write_script: WriteScript, options: str, test_one: str = PASSING_TEST
) -> TestExecutionResult:
    """The result of a script running pytest with ``options`` in a worktree whose
    ``test_one.py`` is ``test_one``."""
    (git_repo / "test_one.py").write_text(test_one)
    return run_one(git_repo, write_script, f"{RUN_PYTEST} {options}")


@pytest.mark.parametrize("selection", sorted(SELECTING_NOTHING))
def test_a_script_whose_pytest_ran_no_test_is_inconclusive(
    git_repo: Path, write_script: WriteScript, selection: str
) -> None:
    """pytest exits 4 or 5 having run no test: a failure that supports nothing (a new-user
    trial's mistyped test id made its hypothesis supported)."""
    result = pytest_over(git_repo, write_script, SELECTING_NOTHING[selection])

    assert result.status is HypothesisStatus.INCONCLUSIVE, result.stdout
    assert "ran no test" in result.error_message


def test_a_script_whose_pytest_stopped_at_a_collection_error_is_inconclusive(
    git_repo: Path, write_script: WriteScript
) -> None:
    """pytest exits 2 without running a test when a test module cannot be imported (in a
    new-user trial, a project's filterwarnings made a newer pytest's warning an error, and
    both the suite's hypothesis and a confirmed fix got a verdict from it)."""
    warning = "import warnings\n\nwarnings.warn('old', FutureWarning)\n\n\n"

    result = pytest_over(git_repo, write_script, "-W error::FutureWarning", warning + PASSING_TEST)

    assert result.status is HypothesisStatus.INCONCLUSIVE, result.stdout
    assert "(Interrupted: 1 error during collection, exit status 2)" in result.error_message
    assert "the error that stopped the collection" in result.error_message


def test_a_script_whose_python_lacks_the_plugin_of_an_option_is_inconclusive(
    git_repo: Path, write_script: WriteScript
) -> None:
    """``pytest -n 2`` in a Python without pytest-xdist is a usage error, exit status 4 (in a
    new-user trial, a runner whose environment was not activated ran its scripts with PATH's
    python3, and a working fix was refuted by it)."""
    result = pytest_over(git_repo, write_script, "-p no:xdist -n 2 test_one.py")

    assert result.status is HypothesisStatus.INCONCLUSIVE, result.stderr
    assert "error: unrecognized arguments: -n" in result.error_message
    assert "pytest-xdist for -n" in result.error_message


def test_a_script_whose_pytest_stopped_at_its_own_code_s_import_error_decides(
    git_repo: Path, write_script: WriteScript
) -> None:
    """The hypothesis may be that the change broke the package's import."""
    (git_repo / "pkg").mkdir()
    (git_repo / "pkg" / "__init__.py").write_text("from .core import helper\n")
    (git_repo / "pkg" / "core.py").write_text("def helper_renamed():\n    pass\n")
    result = pytest_over(git_repo, write_script, "test_one.py", "import pkg\n\n\n" + PASSING_TEST)

    assert result.status is HypothesisStatus.SUPPORTED, result.error_message


def test_the_error_names_the_test_id_pytest_cannot_find(
    git_repo: Path, write_script: WriteScript
) -> None:
    result = pytest_over(git_repo, write_script, "test_one.py::test_onw")

    assert "ERROR: not found:" in result.error_message
    assert "test_one.py::test_onw" in result.error_message


#: pytest's last words when it ran no test, in the forms a new-user run or a review met, and
#: the exit status it gave with them.
NO_TESTS_SAID = {
    "quiet": (5, "", "\n1 deselected in 0.52s\n", NoTestRun("1 deselected in 0.52s", "selection")),
    "a banner": (
        5,
        "",
        "=== 2 deselected, 1 warning in 0.4s ===\n",
        NoTestRun("2 deselected, 1 warning in 0.4s", "selection"),
    ),
    "in colour": (
        5,
        "",
        "\x1b[33m=== \x1b[1m1 deselected\x1b[0m in 0.1s ===\x1b[0m\n",
        NoTestRun("1 deselected in 0.1s", "selection"),
    ),
    "pytest-xdist": (
        5,
        "",
        "==== 2 warnings in 1.41s ====\n",
        NoTestRun("2 warnings in 1.41s", "selection"),
    ),
    "errors while collecting": (
        2,
        "",
        "ERROR test_one.py\n!!!! Interrupted: 2 errors during collection !!!!\n2 errors in 0.7s\n",
        NoTestRun("Interrupted: 2 errors during collection", "collection"),
    ),
    "--collect-only": (
        5,
        "",
        "no tests collected (3 deselected) in 0.01s\n",
        NoTestRun("no tests collected (3 deselected) in 0.01s", "selection"),
    ),
    "a test id": (
        4,
        "ERROR: not found: /w/t.py::t\n(no match in any of [<Module t.py>])\n",
        "no tests ran in 0.9s\n",
        NoTestRun("ERROR: not found: /w/t.py::t", "selection"),
    ),
    "a conftest the script's Python cannot import": (
        4,
        "ImportError while loading conftest '/w/tests/conftest.py'.\n"
        "tests/conftest.py:5: in <module>\n    import simplejson\n"
        "E   ModuleNotFoundError: No module named 'simplejson'\n",
        "",
        NoTestRun("ImportError while loading conftest '/w/tests/conftest.py'.", "collection"),
    ),
    "an option of a plugin the script's Python lacks": (
        4,
        "ERROR: usage: python -m pytest [options] [file_or_dir] [file_or_dir] [...]\n"
        "python -m pytest: error: unrecognized arguments: -n\n  inifile: None\n  rootdir: /w\n\n",
        "",
        NoTestRun("python -m pytest: error: unrecognized arguments: -n", "usage"),
    ),
}


@pytest.mark.parametrize("form", sorted(NO_TESTS_SAID))
def test_pytest_s_words_for_no_test_run_are_heard_in_each_form(form: str) -> None:
    status, stderr, stdout, said = NO_TESTS_SAID[form]

    assert ran_no_tests(status, "/w", stderr, stdout) == said


def test_words_of_one_status_with_another_are_not_heard() -> None:
    """``pytest -k nothing || true; ...; exit 4``: the script's own 4 is not pytest's."""
    assert ran_no_tests(4, "/w", "", "2 deselected in 0.4s\nchecking\n") is None


@pytest.mark.parametrize(
    "said", ["ERROR: checksum mismatch: expected 3 got 4", "lib.c: error: conflicting types"]
)
def test_a_script_s_own_error_with_status_4_is_not_pytest_s(said: str) -> None:
    assert ran_no_tests(4, "/w", f"{said}\n", "") is None


#: pytest's report of a collection stopped by an import error, raised in ``{raiser}``.
COLLECTION_ERROR = """\
_______________________ ERROR collecting tests/test_a.py _______________________
ImportError while importing test module '/w/tests/test_a.py'.
Traceback:
/usr/lib/python3.11/importlib/__init__.py:126: in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
tests/test_a.py:1: in <module>
    import pkg
{raiser}:1: in <module>
    from .core import helper
E   ImportError: cannot import name 'helper' from 'pkg.core' (/w/pkg/core.py)
=========================== short test summary info ============================
ERROR tests/test_a.py
!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!
1 error in 0.56s
"""


@pytest.mark.parametrize(
    ("raiser", "own"),
    [
        ("pkg/__init__.py", True),
        ("/w/src/pkg/__init__.py", True),
        ("tests/helpers.py", False),
        ("conftest.py", False),
        ("/usr/lib/python3/site-packages/other/__init__.py", False),
        (".venv/lib/python3.11/site-packages/other/__init__.py", False),
    ],
)
def test_a_collection_stopped_by_the_worktree_s_own_code_is_evidence(
    raiser: str, own: bool
) -> None:
    """A module of the project that no longer imports may be the bug; a test's, a conftest's
    or an installed package's error is the test set-up's."""
    said = ran_no_tests(2, "/w", "", COLLECTION_ERROR.format(raiser=raiser))

    assert (said is None) is own


#: pytest's report of a conftest.py that imports a module of the worktree with a syntax error.
CONFTEST_SYNTAX_ERROR = """\
ImportError while loading conftest '/w/tests/conftest.py'.
tests/conftest.py:1: in <module>
    import pkg
E     File "/w/src/pkg/__init__.py", line 1
E       def f(:
E             ^
E   SyntaxError: invalid syntax
"""


def test_a_conftest_stopped_by_a_syntax_error_in_the_worktree_s_own_code_is_evidence() -> None:
    assert ran_no_tests(4, "/w", CONFTEST_SYNTAX_ERROR, "") is None


#: pytest's report of a conftest.py whose import of the project found a dependency missing.
CONFTEST_LACKING = """\
ImportError while loading conftest '/w/tests/conftest.py'.
tests/conftest.py:3: in <module>
    import marshmallow
src/marshmallow/__init__.py:5: in <module>
    import packaging
E   ModuleNotFoundError: No module named 'packaging'
"""


def test_a_script_whose_pytest_lacks_a_dependency_of_the_project_is_inconclusive(
    git_repo: Path, write_script: WriteScript
) -> None:
    (git_repo / "src" / "pkg").mkdir(parents=True)
    (git_repo / "src" / "pkg" / "__init__.py").write_text("import no_such_dependency_here\n")
    (git_repo / "tests").mkdir()
    (git_repo / "tests" / "conftest.py").write_text("import pkg\n")
    (git_repo / "tests" / "test_pkg.py").write_text("def test_pkg():\n    pass\n")

    result = run_one(git_repo, write_script, f"PYTHONPATH=src {RUN_PYTEST} tests")

    assert result.status is HypothesisStatus.INCONCLUSIVE, result.error_message
    assert "ImportError while loading conftest" in result.error_message


@pytest.mark.parametrize(("lacking", "heard"), [(True, True), (False, False)])
def test_a_dependency_missing_where_the_worktree_s_code_imports_it_is_no_evidence(
    lacking: bool, heard: bool
) -> None:
    """Raised in the project's own ``__init__.py``, but the module is none of the
    worktree's: the script's Python lacks the project's dependencies."""
    said = ran_no_tests(4, "/w", CONFTEST_LACKING, "", lacking=lacking)

    assert (said is not None) is heard


def test_a_script_whose_pytest_ran_a_failing_test_still_decides(
    git_repo: Path, write_script: WriteScript
) -> None:
    failing = "def test_one():\n    assert False\n"

    result = pytest_over(git_repo, write_script, "test_one.py", failing)

    assert result.status is HypothesisStatus.SUPPORTED, result.error_message


def test_a_script_that_exits_5_on_its_own_still_decides(
    git_repo: Path, write_script: WriteScript
) -> None:
    result = run_one(git_repo, write_script, "echo 5 pages, expected 6 >&2\nexit 5")

    assert result.status is HypothesisStatus.SUPPORTED, result.error_message


def test_a_python_in_a_folder_with_a_space_that_lacks_the_module_it_runs_is_inconclusive(
    git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """Python names itself by the path it was started with: a worktree's .venv under a
    folder such as ``My Projects``."""
    spaced = tmp_path / "My Projects"
    spaced.mkdir()
    (spaced / "python3").symlink_to(sys.executable)

    result = run_one(git_repo, write_script, f"'{spaced / 'python3'}' -m no_such_runner_here")

    assert result.status is HypothesisStatus.INCONCLUSIVE, result.stderr


def test_a_module_of_the_worktree_s_own_that_cannot_run_still_decides(
    git_repo: Path, write_script: WriteScript
) -> None:
    """A branch that removed ``mypkg/cli.py``: ``python -m mypkg.cli`` failing is the bug."""
    (git_repo / "mypkg").mkdir()
    (git_repo / "mypkg" / "__init__.py").write_text("")

    result = run_one(git_repo, write_script, f"{sys.executable} -m mypkg.cli --help")

    assert result.status is HypothesisStatus.SUPPORTED, result.error_message


def test_a_script_that_goes_on_after_a_missing_module_to_run_still_decides(
    git_repo: Path, write_script: WriteScript
) -> None:
    body = f"{sys.executable} -m no_such_linter_here\necho the bug is there >&2\nexit 1"

    result = run_one(git_repo, write_script, body)

    assert result.status is HypothesisStatus.SUPPORTED, result.error_message


@pytest.mark.usefixtures("venv_first")
@pytest.mark.parametrize("way", sorted(WAYS))
@pytest.mark.parametrize("module", sorted(PACKAGES))
def test_every_way_of_starting_python_imports_the_worktree_package(
    worktree: Callable[[str, str], Path], write_script: WriteScript, module: str, way: str
) -> None:
    tree = worktree("fixed", "fixed")
    (tree / ".falsification").mkdir()
    (tree / ".falsification" / "where.py").write_text(f"import {module} as m\nm.where()\n")
    name = PACKAGES[module].split("/")[0].replace("dist", "pkg")
    name = "acme-tools" if name == "nspkg" else name

    result = run_one(tree, write_script, WAYS[way].format(module=module, name=name))

    assert result.stdout.strip() == str(tree.resolve() / PACKAGES[module] / "__init__.py")


@pytest.mark.usefixtures("venv_first")
def test_verdicts_follow_each_worktree_code_not_the_main_checkout(
    worktree: Callable[[str, str], Path], write_script: WriteScript
) -> None:
    check = "import srcpkg, flatpkg, acme.tools as t, sys\n"
    check += "sys.exit(0 if {srcpkg.VALUE, flatpkg.VALUE, t.VALUE} == {'fixed'} else 1)\n"
    trees = {"fixed": worktree("fixed", "fixed"), "buggy": worktree("buggy", "main")}
    for tree in trees.values():
        write_script(tree, "still_broken", "python .falsification/check.py")
        (tree / ".falsification" / "check.py").write_text(check)
    hypothesis = Hypothesis("still_broken", "the bug is still there")

    runs = [HypothesisRun(hypothesis, trees[name]) for name in ("fixed", "buggy")]

    results = TestExecutor().execute_parallel(runs)

    assert [r.status for r in results] == [HypothesisStatus.FALSIFIED, HypothesisStatus.SUPPORTED]


def test_a_runner_started_by_its_path_runs_the_scripts_in_its_environment(
    project: Path, worktree: Callable[[str, str], Path], write_script: WriteScript, tmp_path: Path
) -> None:
    """``.venv/bin/pytest --hypotheses``, the environment not activated: the scripts'
    ``python3`` was PATH's, which has none of the project's dependencies, and in new-user
    trials on attrs and marshmallow working fixes were refuted."""
    venv = tmp_path / "runner-venv"
    python = venv_with(venv, str(project / "copydist"), "-e", str(project / "srcdist"))
    plugin_site = sysconfig.get_paths()["purelib"]  # this run's pytest and plugin
    [site_packages] = venv.glob("lib/python3*/site-packages")
    (site_packages / "runner.pth").write_text(f"import site; site.addsitedir({plugin_site!r})\n")
    plain = tmp_path / "plain-bin"  # a python3 of no virtual environment, first on PATH
    plain.mkdir()
    (plain / "python3").symlink_to(Path(sys.base_prefix) / "bin" / "python3")
    tree = worktree("fixed", "fixed")
    write_script(tree, "h", 'python3 -c "import copypkg, srcpkg as m; m.where()"')
    report = tmp_path / "report.json"
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST")}
    env.pop("VIRTUAL_ENV", None)
    env.pop("CONDA_PREFIX", None)
    env.pop("PYTHONPATH", None)
    env["PATH"] = os.pathsep.join([str(plain), *filter(None, os.defpath.split(os.pathsep))])

    subprocess.run(
        [str(python), "-m", "pytest", f"--hypotheses={tree}", f"--hypotheses-report={report}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        check=False,
        timeout=120,
    )

    [record] = json.loads(report.read_text())["hypotheses"]
    assert record["status"] == "falsified", record["error_message"] or record["stderr"]
    assert str(tree.resolve() / PACKAGES["srcpkg"]) in record["stdout"]
    assert Path(record["code_under_test"]["activated"]).resolve() == venv.resolve()


@pytest.mark.usefixtures("venv_first")
def test_a_python_with_its_own_plain_install_of_the_project_imports_that_install(
    project: Path, worktree: Callable[[str, str], Path], write_script: WriteScript, tmp_path: Path
) -> None:
    """A dateutil trial's hypothesis "release 2.8.0 did not have the bug" ran, from /tmp, a
    virtual environment of its own holding the release: the worktree was first on the path of
    every Python of the script, that one's too, and the hypothesis came out FALSIFIED on the
    worktree's code."""
    python = release_venv(project, tmp_path)
    tree = worktree("fixed", "fixed")

    result = run_one(tree, write_script, f"cd / && {python} -c '{SHOW}' && python -c '{SHOW}'")

    assert result.stdout.split() == ["released", "fixed"], result.stderr


@pytest.mark.usefixtures("venv_first")
def test_the_code_tested_names_the_install_a_python_kept_of_its_own(
    project: Path, worktree: Callable[[str, str], Path], write_script: WriteScript, tmp_path: Path
) -> None:
    """A pluggy trial's "release 1.0.0 had no bug" kept its release, rightly, but its report
    said the script had tested the worktree's code."""
    python = release_venv(project, tmp_path)
    tree = worktree("fixed", "fixed")

    result = run_one(tree, write_script, f"cd / && {python} -c '{SHOW}'")

    assert result.stdout.split() == ["released"], result.stderr
    assert result.code_under_test is not None
    environment = python.parent.parent
    assert result.code_under_test.own_installs == (f"flatpkg in {environment}",)
    assert f"imported its own install instead (flatpkg in {environment})" in code_summary(
        result.code_under_test.to_dict()
    )


@pytest.mark.usefixtures("venv_first")
def test_a_python_of_the_runner_s_environments_keeps_the_worktree_whatever_it_holds(
    project: Path,
    worktree: Callable[[str, str], Path],
    write_script: WriteScript,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The environment the runner reads (here the one ``VIRTUAL_ENV`` names) is the one whose
    scripts test their worktree, whatever plain copy it holds beside the development install
    (a user site's, an old release's): its Python keeps the worktree first."""
    python = release_venv(project, tmp_path)
    monkeypatch.setenv("VIRTUAL_ENV", str(python.parent.parent))
    tree = worktree("fixed", "fixed")

    result = run_one(tree, write_script, f"cd / && {python} -c '{SHOW}'")

    assert result.stdout.split() == ["fixed"], result.stderr


SHOW = "import flatpkg; print(flatpkg.VALUE)"


def release_venv(project: Path, tmp_path: Path) -> Path:
    """A virtual environment with a plain install of ``flatpkg`` whose value is ``released``:
    its Python."""
    release = tmp_path / "release"
    shutil.copytree(project / "flatdist", release, ignore=shutil.ignore_patterns("*.egg-info"))
    (release / "flatpkg" / "__init__.py").write_text(INIT.format(value="released"))
    return venv_with(tmp_path / "release-venv", str(release))


@pytest.mark.usefixtures("venv_first")
def test_the_result_names_each_redirected_location(
    project: Path, worktree: Callable[[str, str], Path], write_script: WriteScript
) -> None:
    tree = worktree("fixed", "fixed")

    result = run_one(tree, write_script, "exit 0")

    assert result.code_under_test is not None
    moved = {(r.installed_from, r.import_path) for r in result.code_under_test.redirects}
    assert moved == {
        (str(project.resolve() / location), str(tree.resolve() / location))
        for location in ("srcdist/src", "flatdist", "nsdist")
    }


@pytest.mark.usefixtures("venv_first")
def test_the_users_own_pythonpath_comes_after_the_worktree(
    worktree: Callable[[str, str], Path],
    write_script: WriteScript,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "mine"))
    tree = worktree("fixed", "fixed")

    result = run_one(tree, write_script, 'echo "$PYTHONPATH"')

    entries = result.stdout.strip().split(os.pathsep)
    assert entries[-1] == str(tmp_path / "mine")
    # first, the watch of the compiled extension the worktree lacks (see below)
    assert all(entry.startswith(str(tree.resolve())) for entry in entries[1:-1])


#: Where an in-place build of ``srcpkg._speedups`` lies in a checkout of the project.
SPEEDUPS_BUILD = f"{PACKAGES['srcpkg']}/_speedups{EXTENSION_SUFFIXES[0]}"

#: Scripts that try the compiled extension the worktree has no build of: a package that
#: falls back to pure Python, and one that does not.
UNBUILT_USES = {
    "falls back": "import srcpkg\ntry:\n    import srcpkg._speedups\nexcept ImportError:\n    pass",
    "fails": "import srcpkg._speedups",
}


@pytest.mark.usefixtures("venv_first")
@pytest.mark.parametrize("use", sorted(UNBUILT_USES))
def test_a_script_that_tries_a_compiled_extension_its_worktree_lacks_is_inconclusive(
    worktree: Callable[[str, str], Path], write_script: WriteScript, use: str
) -> None:
    """markupsafe's C speedups, built in place in the main checkout only: every worktree
    ran the pure-Python fallback, and a crash of the C code came out FALSIFIED."""
    tree = worktree("fixed", "fixed")

    result = run_one(tree, write_script, f"python -c '{UNBUILT_USES[use]}'")

    assert result.status is HypothesisStatus.INCONCLUSIVE, result.stderr
    assert "looked for the compiled extension srcpkg._speedups" in result.error_message


@pytest.mark.usefixtures("venv_first")
def test_a_script_whose_worktree_built_the_compiled_extension_keeps_its_verdict(
    worktree: Callable[[str, str], Path], write_script: WriteScript
) -> None:
    """Built by the script itself, or by a setup step: the import finds the worktree's own
    build, which is what the hypothesis is about."""
    tree = worktree("fixed", "fixed")
    find = "import importlib.util as u; assert u.find_spec('srcpkg._speedups').origin"

    result = run_one(tree, write_script, f'touch {SPEEDUPS_BUILD}\npython -c "{find}"')

    assert result.status is HypothesisStatus.FALSIFIED, result.error_message


@pytest.mark.usefixtures("venv_first")
def test_a_setup_step_that_builds_the_compiled_extension_clears_its_warning(
    worktree: Callable[[str, str], Path], write_script: WriteScript
) -> None:
    """The build was looked for before the step only: every result said the extension was
    missing from the worktree beside a verdict that came from the worktree's own build."""
    tree = worktree("fixed", "fixed")
    write_script(tree, "h", FIND_SPEEDUPS)
    config = FalsificationConfig(setup_command=f"touch {SPEEDUPS_BUILD}")

    result = TestExecutor(config).execute_single(Hypothesis("h", "the bug"), tree)

    assert result.status is HypothesisStatus.FALSIFIED, result.error_message
    assert result.code_under_test is not None
    assert result.code_under_test.unbuilt_extensions == ()
    assert not [w for w in result.code_under_test.warnings if "is missing from" in w]


def stale_build(tree: Path, source: str = "_speedups.c", age: float = 3600) -> Path:
    """An in-place build of ``srcpkg._speedups`` in ``tree``, ``age`` seconds older than
    ``source`` beside it, which the worktree tracks: built, then the source changed."""
    folder = tree / PACKAGES["srcpkg"]
    (folder / source).write_text("# the fix\n")
    git(tree, "add", str(folder / source))
    built = folder / f"_speedups{EXTENSION_SUFFIXES[0]}"
    built.write_bytes(b"")
    then = (folder / source).stat().st_mtime - age
    os.utime(built, (then, then))
    return built


def cython_build(tree: Path, *, generated_tracked: bool) -> None:
    """``srcpkg/_speedups.pyx`` tracked, the C file Cython generated from it older (tracked
    or not), and a build newer than both: what a build compiles is that older C file."""
    folder = tree / PACKAGES["srcpkg"]
    generated = folder / "_speedups.c"
    generated.write_text("/* Generated by Cython 3.0.11 */\n")
    (folder / "_speedups.pyx").write_text("# the fix\n")
    tracked = [folder / "_speedups.pyx", *([generated] if generated_tracked else [])]
    git(tree, "add", *map(str, tracked))
    built = folder / f"_speedups{EXTENSION_SUFFIXES[0]}"
    built.write_bytes(b"")
    fixed_at = (folder / "_speedups.pyx").stat().st_mtime
    os.utime(generated, (fixed_at - 60, fixed_at - 60))
    os.utime(built, (fixed_at + 60, fixed_at + 60))


#: Finds the module as an import would, which is what the watch looks at.
FIND_SPEEDUPS = "python -c 'import importlib.util as u; u.find_spec(\"srcpkg._speedups\")'"


@pytest.mark.usefixtures("venv_first")
def test_a_script_that_imports_a_build_older_than_its_source_is_inconclusive(
    worktree: Callable[[str, str], Path], write_script: WriteScript
) -> None:
    """simplejson: a worktree's .venv built before its C fix was undone, and the run said the
    undone fix works."""
    tree = worktree("fixed", "fixed")
    stale_build(tree)

    result = run_one(tree, write_script, FIND_SPEEDUPS)

    assert result.status is HypothesisStatus.INCONCLUSIVE, result.error_message
    assert "srcpkg._speedups, whose build in its worktree is older than" in result.error_message
    assert f"{PACKAGES['srcpkg']}/_speedups.c" in result.error_message
    assert "Cython" not in result.error_message  # markupsafe: plain C, no Cython to speak of


@pytest.mark.usefixtures("venv_first")
def test_the_run_names_every_worktree_whose_build_is_older_than_its_source(
    worktree: Callable[[str, str], Path], write_script: WriteScript
) -> None:
    """markupsafe: two worktrees with stale builds made one warning in the run's summary that
    named neither."""
    trees = [worktree(name, "fixed") for name in ("one", "two")]
    results = []
    for tree in trees:
        stale_build(tree)
        results.append(run_one(tree, write_script, FIND_SPEEDUPS))
    records = [
        {"worktree_path": r.worktree_path, "code_under_test": r.code_under_test.to_dict()}
        for r in results
        if r.code_under_test is not None
    ]

    (warning,) = [w for w in run_warnings(records) if "is older than" in w]

    assert warning.startswith(f"{trees[0]}: the build of the compiled extension srcpkg._speedups")
    assert warning.endswith(f"(the same for 1 more worktree: {trees[1]})")


#: Where each layout keeps the package of ``_speed`` (none: a top-level module, as
#: pyrsistent's ``pvectorc``), its source and the name import knows the module by.
LAYOUTS = {
    "flat": ("fastpkg", "fastpkg/_speed.c", "fastpkg._speed"),
    "lib": ("lib/fastpkg", "csrc/_speed.c", "fastpkg._speed"),
    "top": (None, "_speedmodule.c", "_speed"),
    # ujson's: the module at the root, its sources in python/ and lib/, the change in one of
    # them not named after it
    "split": (None, "lib/impl.c", "_speed"),
}


def project_built_in_place(repo: Path, *, age: float, layout: str = "flat") -> None:
    """A project installed nowhere this run can see, with ``_speed``'s C source tracked and
    an in-place build of it ``age`` seconds older than the source (as a worktree's own
    ``.venv`` with the project installed in development mode leaves it), laid out as
    :data:`LAYOUTS` says: ``lib`` as PyYAML keeps its ``_yaml.pyx`` outside ``lib/yaml``."""
    package, source_path, _module = LAYOUTS[layout]
    folder = repo if package is None else repo / package
    source = repo / source_path
    for made in (folder, source.parent):
        made.mkdir(parents=True, exist_ok=True)
    if package is not None:
        (folder / "__init__.py").write_text("")
    source.write_text("PyMODINIT_FUNC PyInit__speed(void) { return 0; }  /* the fix */\n")
    (repo / ".gitignore").write_text("*.so\n*.pyd\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the C fix")
    built = folder / f"_speed{EXTENSION_SUFFIXES[0]}"
    built.write_bytes(b"")
    then = source.stat().st_mtime - age
    os.utime(built, (then, then))


def find_speed(layout: str) -> str:
    """Finds the module ``_speed`` of ``layout`` as an import from the worktree's root would."""
    path = 'PYTHONPATH="lib:$PYTHONPATH" ' if layout == "lib" else ""
    module = LAYOUTS[layout][2]
    return f"{path}python -c 'import importlib.util as u; u.find_spec(\"{module}\")'"


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_a_build_in_place_older_than_its_source_of_a_project_installed_nowhere_is_inconclusive(
    git_repo: Path, write_script: WriteScript, layout: str
) -> None:
    """Its worktree's own .venv ran the build of before a C change, and the run said the
    change works: builds older than their source were looked for only among the modules of
    an install in the runner's environment, in packages, and sources only in the package's
    folder."""
    project_built_in_place(git_repo, age=3600, layout=layout)

    result = run_one(git_repo, write_script, find_speed(layout))

    _package, source, module = LAYOUTS[layout]
    assert result.status is HypothesisStatus.INCONCLUSIVE, result.error_message
    assert f"{module}, whose build in its worktree is older than" in result.error_message
    assert source in result.error_message


def test_a_script_that_replaces_pythonpath_while_its_build_is_watched_is_inconclusive(
    git_repo: Path, write_script: WriteScript
) -> None:
    """``PYTHONPATH=lib python ...``, natural for a lib/ layout, hid the watch: a trial's
    script ran PyYAML's pure-Python fallback and came out SUPPORTED beside a warning that
    a script importing the module is inconclusive."""
    project_built_in_place(git_repo, age=3600, layout="lib")
    replacing = find_speed("lib").replace('"lib:$PYTHONPATH"', "lib")

    result = run_one(git_repo, write_script, f"# PYTHONPATH=ignored\n{replacing}")

    assert result.status is HypothesisStatus.INCONCLUSIVE, result.error_message
    assert "the script replaces PYTHONPATH (PYTHONPATH=lib python -c" in result.error_message
    assert "fastpkg._speed" in result.error_message


def test_a_script_that_replaces_pythonpath_with_nothing_to_watch_keeps_its_verdict(
    git_repo: Path, write_script: WriteScript
) -> None:
    project_built_in_place(git_repo, age=-3600, layout="lib")
    replacing = find_speed("lib").replace('"lib:$PYTHONPATH"', "lib")

    result = run_one(git_repo, write_script, replacing)

    assert result.status is HypothesisStatus.FALSIFIED, result.error_message


def test_a_build_in_place_newer_than_its_source_keeps_its_verdict(
    git_repo: Path, write_script: WriteScript
) -> None:
    project_built_in_place(git_repo, age=-3600)

    result = run_one(git_repo, write_script, find_speed("flat"))

    assert result.status is HypothesisStatus.FALSIFIED, result.error_message
    assert result.code_under_test is not None
    assert result.code_under_test.stale is None


@pytest.mark.usefixtures("venv_first")
def test_a_build_compiled_from_cython_output_older_than_its_pyx_is_inconclusive(
    worktree: Callable[[str, str], Path], write_script: WriteScript
) -> None:
    """msgpack: the .pyx fixed and committed, then built, but its setup.py compiled the C file
    Cython had generated before the fix, and the unfixed code came out FALSIFIED."""
    tree = worktree("fixed", "fixed")
    cython_build(tree, generated_tracked=False)

    result = run_one(tree, write_script, FIND_SPEEDUPS)

    assert result.status is HypothesisStatus.INCONCLUSIVE, result.error_message
    assert f"{PACKAGES['srcpkg']}/_speedups.pyx" in result.error_message
    assert "or compiled from what Cython generated before" in result.error_message


@pytest.mark.usefixtures("venv_first")
def test_a_generated_c_file_that_git_tracks_is_not_taken_for_an_old_one(
    worktree: Callable[[str, str], Path], write_script: WriteScript
) -> None:
    """A checkout writes a tracked generated file and its .pyx in either order, a tick
    apart: the file is what the commit holds, and the build from it is current."""
    tree = worktree("fixed", "fixed")
    cython_build(tree, generated_tracked=True)

    result = run_one(tree, write_script, FIND_SPEEDUPS)

    assert result.status is HypothesisStatus.FALSIFIED, result.error_message


@pytest.mark.usefixtures("venv_first")
def test_a_script_that_builds_again_before_it_imports_keeps_its_verdict(
    worktree: Callable[[str, str], Path], write_script: WriteScript
) -> None:
    tree = worktree("fixed", "fixed")
    built = stale_build(tree)

    result = run_one(tree, write_script, f"touch {built}\n{FIND_SPEEDUPS}")

    assert result.status is HypothesisStatus.FALSIFIED, result.error_message


@pytest.mark.usefixtures("venv_first")
def test_a_setup_step_that_builds_again_clears_the_stale_build(
    worktree: Callable[[str, str], Path], write_script: WriteScript
) -> None:
    """The look after a setup step started from the one before, stale builds included: the
    result still said the build the step had just made was older than its source."""
    tree = worktree("fixed", "fixed")
    built = stale_build(tree)
    write_script(tree, "h", FIND_SPEEDUPS)
    config = FalsificationConfig(setup_command=f"touch {built}")

    result = TestExecutor(config).execute_single(Hypothesis("h", "the bug"), tree)

    assert result.status is HypothesisStatus.FALSIFIED, result.error_message
    assert result.code_under_test is not None
    assert result.code_under_test.stale is None
    assert not [w for w in result.code_under_test.warnings if "older than" in w]


def run_twice(tree: Path, setup: str, between: Callable[[], None]) -> TestExecutionResult:
    """The second of two runs of the hypothesis ``h`` in ``tree`` with the setup step
    ``setup``, ``between`` done after the first."""
    executor = TestExecutor(FalsificationConfig(setup_command=setup))
    executor.execute_single(Hypothesis("h", "the bug"), tree)
    between()
    return executor.execute_single(Hypothesis("h", "the bug"), tree)


@pytest.mark.usefixtures("venv_first")
def test_a_setup_step_runs_again_when_its_builds_went_stale_with_no_change_of_content(
    worktree: Callable[[str, str], Path], write_script: WriteScript
) -> None:
    """markupsafe: a checkout gave the C source a new time, the step's last success was
    reused as the content was the same, and the run stayed inconclusive for ever."""
    tree = worktree("fixed", "fixed")
    built = stale_build(tree)
    write_script(tree, "h", FIND_SPEEDUPS)

    def stale_again() -> None:  # every file as it was
        then = built.stat().st_mtime - 3600
        os.utime(built, (then, then))

    result = run_twice(tree, f"touch {built}", stale_again)

    assert result.status is HypothesisStatus.FALSIFIED, result.error_message
    assert result.setup is not None
    assert result.setup["outcome"] == "ran"


@pytest.mark.usefixtures("venv_first")
@pytest.mark.parametrize(
    ("step", "status", "outcome"),
    [
        (f"touch {SPEEDUPS_BUILD}", HypothesisStatus.FALSIFIED, "ran"),
        ("true", HypothesisStatus.INCONCLUSIVE, "reused"),
    ],
    ids=["made it", "made none"],
)
def test_a_missing_build_runs_again_only_the_setup_step_that_made_it(
    worktree: Callable[[str, str], Path],
    write_script: WriteScript,
    step: str,
    status: HypothesisStatus,
    outcome: str,
) -> None:
    """markupsafe: the build a step made deleted (git ignores it, so the content was the
    same), the step's last success was reused, and the run stayed inconclusive for ever,
    advising a setup step. A step that made none is reused: run again for a missing one, a
    step that makes a ``.venv`` only would take minutes at every run, inconclusive still."""
    tree = worktree("fixed", "fixed")
    (tree / ".gitignore").write_text("*.so\n*.pyd\n")
    write_script(tree, "h", FIND_SPEEDUPS)

    result = run_twice(tree, step, lambda: (tree / SPEEDUPS_BUILD).unlink(missing_ok=True))

    assert result.status is status, result.error_message
    assert result.setup is not None
    assert result.setup["outcome"] == outcome


@pytest.mark.usefixtures("venv_first")
def test_a_build_a_setup_step_leaves_stale_is_warned_once(
    worktree: Callable[[str, str], Path], write_script: WriteScript
) -> None:
    tree = worktree("fixed", "fixed")
    stale_build(tree)
    write_script(tree, "h", "exit 0")
    config = FalsificationConfig(setup_command="true")

    result = TestExecutor(config).execute_single(Hypothesis("h", "the bug"), tree)

    assert result.code_under_test is not None
    assert len([w for w in result.code_under_test.warnings if "older than" in w]) == 1


@pytest.mark.usefixtures("venv_first")
def test_a_build_older_than_the_module_it_compiles_is_inconclusive(
    worktree: Callable[[str, str], Path], write_script: WriteScript
) -> None:
    """mypyc or Cython's pure-Python mode: the build comes before the ``.py`` on import."""
    tree = worktree("fixed", "fixed")
    stale_build(tree, source="_speedups.py")

    result = run_one(tree, write_script, FIND_SPEEDUPS)

    assert result.status is HypothesisStatus.INCONCLUSIVE, result.error_message


@pytest.mark.usefixtures("venv_first")
def test_a_build_cut_to_the_second_of_a_later_change_is_stale(
    worktree: Callable[[str, str], Path], write_script: WriteScript
) -> None:
    """setuptools copies a build in place with its time cut to the second. A fix undone and
    tested in the second after a build left it looking as new as the change, and the undone
    fix came out FALSIFIED where it works: the ambiguous second counts as a change."""
    tree = worktree("fixed", "fixed")
    source = tree / PACKAGES["srcpkg"] / "_speedups.c"
    stale_build(tree, age=0)
    saved = int(source.stat().st_mtime) + 0.5
    os.utime(source, (saved, saved))
    os.utime(source.with_name(f"_speedups{EXTENSION_SUFFIXES[0]}"), (int(saved), int(saved)))

    result = run_one(tree, write_script, FIND_SPEEDUPS)

    assert result.status is HypothesisStatus.INCONCLUSIVE, result.error_message


@pytest.mark.usefixtures("venv_first")
def test_a_worktree_given_by_a_relative_path_still_owns_its_builds(
    worktree: Callable[[str, str], Path],
    write_script: WriteScript,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The script runs inside its worktree, where a relative path means another folder."""
    tree = worktree("fixed", "fixed")
    built = stale_build(tree)
    write_script(tree, "h", f"touch {built}\n{FIND_SPEEDUPS}")
    monkeypatch.chdir(tree.parent)

    result = TestExecutor().execute_single(Hypothesis("h", "the bug"), Path(tree.name))

    assert result.status is HypothesisStatus.FALSIFIED, result.error_message


def test_an_extension_is_named_without_the_tag_of_the_python_it_was_built_for() -> None:
    """The installed checkout may be built for another Python than the runner's."""
    for name in (
        "_speedups.cpython-312-x86_64-linux-gnu.so",
        "_speedups.pypy310-pp73-x86_64-linux-gnu.so",
        "_speedups.abi3.so",
    ):
        assert _extension_name(Path("/r/src/pkg") / name, Path("/r/src")) == "pkg._speedups"


@pytest.mark.usefixtures("venv_first")
def test_new_warns_of_a_compiled_extension_the_new_worktree_has_no_build_of(
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Told as the worktree is made, not after a run whose scripts tested the fallback."""
    monkeypatch.chdir(project)
    args = ["new", "speedups", "--run", "exit 0", "--dir", str(tmp_path / "h"), "--base", "main"]
    try:
        assert cli.main(args) == 0
    finally:
        cli.main(["clean", "--force"])

    assert "warning: srcpkg: the compiled extension srcdist/src/srcpkg/_speedups" in (
        capsys.readouterr().err
    )


@pytest.mark.usefixtures("venv_first")
def test_the_watch_of_a_compiled_extension_keeps_the_users_own_sitecustomize(
    worktree: Callable[[str, str], Path],
    write_script: WriteScript,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A package, whose relative import needs its own name in ``sys.modules``."""
    mine = tmp_path / "mine" / "sitecustomize"
    mine.mkdir(parents=True)
    (mine / "__init__.py").write_text("from . import said\n")
    (mine / "said.py").write_text("import sys\nprint('mine ran', file=sys.stderr)\n")
    monkeypatch.setenv("PYTHONPATH", str(mine.parent))
    tree = worktree("fixed", "fixed")

    result = run_one(tree, write_script, "python -c 'import srcpkg'")

    assert result.status is HypothesisStatus.FALSIFIED, result.error_message
    assert result.stderr.strip() == "mine ran"


def the_warning_about(distribution: str, tree: Path, write_script: WriteScript) -> str:
    """The one warning that a script's result gives about ``distribution``."""
    result = run_one(tree, write_script, "exit 0")
    assert result.code_under_test is not None
    (warning,) = [w for w in result.code_under_test.warnings if w.startswith(distribution)]
    return warning


@pytest.mark.usefixtures("venv_first")
def test_a_plain_copy_of_the_project_is_warned_with_what_to_do(
    project: Path, worktree: Callable[[str, str], Path], write_script: WriteScript
) -> None:
    warning = the_warning_about("copypkg", worktree("fixed", "fixed"), write_script)

    assert "plain copy" in warning
    assert f"pip install -e {project.resolve() / 'copydist'}" in warning


#: Installs no worktree can mirror: the distribution, and how its warning starts.
UNMIRRORED = {
    "package mapped to another folder name": (
        "renpkg",
        "renpkg maps the module renamed to {project}/rendist/lib/code, which no import path "
        "can reproduce",
    ),
    "extension built in place": (
        "srcpkg",
        "srcpkg: the compiled extension srcdist/src/srcpkg/_speedups"
        + EXTENSION_SUFFIXES[0]
        + " was built in place in {project}",
    ),
}


@pytest.mark.usefixtures("venv_first")
@pytest.mark.parametrize("case", sorted(UNMIRRORED))
def test_an_install_no_worktree_can_mirror_is_warned(
    project: Path, worktree: Callable[[str, str], Path], write_script: WriteScript, case: str
) -> None:
    distribution, start = UNMIRRORED[case]

    warning = the_warning_about(distribution, worktree("fixed", "fixed"), write_script)

    assert warning.startswith(start.format(project=project.resolve()))


@pytest.mark.usefixtures("venv_first")
def test_a_location_missing_from_the_worktree_is_warned_and_not_redirected(
    project: Path, worktree: Callable[[str, str], Path], write_script: WriteScript
) -> None:
    tree = worktree("moved", "fixed")
    git(tree, "mv", "srcdist/src", "srcdist/lib")

    result = run_one(tree, write_script, 'echo "$PYTHONPATH"')

    assert result.code_under_test is not None
    assert str(tree.resolve() / "srcdist") not in result.stdout
    (warning,) = [w for w in result.code_under_test.warnings if "srcpkg" in w]
    assert f"does not exist in the worktree {tree.resolve()}" in warning


@pytest.mark.usefixtures("venv_first")
def test_a_worktree_with_its_own_venv_runs_with_it_activated_and_nothing_redirected(
    worktree: Callable[[str, str], Path], write_script: WriteScript
) -> None:
    tree = worktree("own-venv", "fixed")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tree / ".venv")], check=True)

    result = run_one(
        tree, write_script, 'python -c "import sys; print(sys.prefix)"; echo "[$PYTHONPATH]"'
    )

    assert result.stdout.split() == [str(tree / ".venv"), "[]"]
    assert result.code_under_test is not None
    assert result.code_under_test.mode == "venv"


def test_a_worktree_with_its_own_venv_uses_it_when_the_installs_cannot_be_read(
    worktree: Callable[[str, str], Path],
    write_script: WriteScript,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree = worktree("own-venv", "fixed")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tree / ".venv")], check=True)

    def unreadable(*_args: object) -> None:
        raise PermissionError("site-packages cannot be read")

    monkeypatch.setattr(imports, "development_installs", unreadable)
    result = run_one(tree, write_script, 'python -c "import sys; print(sys.prefix)"')

    assert result.stdout.split() == [str(tree / ".venv")]
    assert result.code_under_test is not None
    assert result.code_under_test.mode == "venv"


@pytest.fixture
def src_layout(git_repo: Path) -> Path:
    """A repository with the package ``uninstalledpkg`` in ``src/``, installed nowhere."""
    (git_repo / "src" / "uninstalledpkg").mkdir(parents=True)
    (git_repo / "src" / "uninstalledpkg" / "__init__.py").write_text("VALUE = 1\n")
    return git_repo


def test_a_src_package_that_nothing_installed_points_at_is_warned(
    src_layout: Path, write_script: WriteScript
) -> None:
    result = run_one(src_layout, write_script, "exit 0")

    assert result.code_under_test is not None
    assert result.code_under_test.unreachable_packages == ("uninstalledpkg",)
    (warning,) = result.code_under_test.warnings
    assert "uninstalledpkg in src/ can be imported only once installed" in warning


def test_the_library_logs_the_warning_its_result_carries(
    src_layout: Path, write_script: WriteScript, caplog: pytest.LogCaptureFixture
) -> None:
    """Only a pytest run, whose reports tell it, keeps it out of the log."""
    run_one(src_layout, write_script, "exit 0")

    assert any("can be imported only once installed" in m for m in caplog.messages)


def test_a_src_package_that_pytest_s_own_pythonpath_reaches_is_not_warned(
    src_layout: Path, write_script: WriteScript
) -> None:
    (src_layout / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["src"]\n')

    result = run_one(src_layout, write_script, "exit 0")

    assert result.code_under_test is not None
    assert result.code_under_test.warnings == ()


def test_a_script_failing_to_import_its_worktree_s_uninstalled_package_is_inconclusive(
    src_layout: Path, write_script: WriteScript
) -> None:
    """Run from a Python that does not have the project: it tested none of its code."""
    result = run_one(src_layout, write_script, f'{sys.executable} -c "import uninstalledpkg"')

    assert result.status is HypothesisStatus.INCONCLUSIVE
    assert "failed to import uninstalledpkg, which its worktree has in src/" in (
        result.error_message
    )


def test_nothing_is_redirected_without_a_development_install(
    git_repo: Path, write_script: WriteScript
) -> None:
    result = run_one(git_repo, write_script, "exit 0")

    assert result.code_under_test is not None
    assert result.code_under_test.to_dict() == {
        "mode": "unchanged",
        "redirects": [],
        "venv": None,
        "activated": None,
        "warnings": [],
        "missing_modules": [],
        "unreachable_packages": [],
        "unbuilt_extensions": [],
        "stale_extensions": [],
        "stale_source": None,
        "own_installs": [],
    }


@pytest.mark.usefixtures("venv_first")
def test_verbose_summary_and_json_report_say_what_was_tested(
    run_pytest: RunPytest,
    worktree: Callable[[str, str], Path],
    write_script: WriteScript,
    tmp_path: Path,
) -> None:
    tree = worktree("fixed", "fixed")
    write_script(tree, "h", "exit 0")
    report = tmp_path / "report.json"

    result = run_pytest(f"--hypotheses={tree}", "-v", f"--hypotheses-report={report}")

    result.stdout.fnmatch_lines(
        [
            "code of h (*): redirected into the worktree: *srcpkg from *srcdist/src *",
            "warning: copypkg is installed from * as a plain copy*",
        ]
    )
    (record,) = json.loads(report.read_text())["hypotheses"]
    assert record["code_under_test"]["mode"] == "redirected"


@pytest.mark.usefixtures("venv_first")
def test_the_failure_text_says_what_was_tested(
    run_pytest: RunPytest, worktree: Callable[[str, str], Path], write_script: WriteScript
) -> None:
    tree = worktree("fixed", "fixed")
    write_script(tree, "h", "exit 1")

    result = run_pytest(f"--hypotheses={tree}")

    result.stdout.fnmatch_lines(["*code tested:*redirected into the worktree: *flatpkg from *"])


def test_an_editables_finder_is_read_as_hatchling_writes_it(git_repo: Path, tmp_path: Path) -> None:
    """hatchling's exact mode (and PDM's) maps each module with ``editables``; building one
    needs hatchling, which an offline test cannot install, so its files are written as
    hatchling writes them."""
    package = git_repo / "src" / "hatched"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    env = tmp_path / "env"
    site_packages = env / "lib" / "python3.11" / "site-packages"
    site_packages.mkdir(parents=True)
    (env / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (env / "bin").mkdir()
    (env / "bin" / "python3").symlink_to(sys.executable)
    (site_packages / "_editable_impl_hatched.pth").write_text("import _editable_impl_hatched")
    (site_packages / "_editable_impl_hatched.py").write_text(
        "from editables.redirector import RedirectingFinder as F\nF.install()\n"
        f"F.map_module('hatched', {str(package / '__init__.py')!r})"
    )

    installs = development_installs([git_repo], {"PATH": str(env / "bin")})

    (location,) = installs.locations
    assert (location.distribution, location.relative) == ("_editable_impl_hatched.pth", Path("src"))


def test_folders_outside_any_checkout_cost_no_git_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "git-calls"
    tools = tmp_path / "tools"
    tools.mkdir()
    recorder = tools / "git"
    recorder.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\nexit 128\n')
    recorder.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    folders = [tmp_path / f"plain-{index}" for index in range(3)]
    for folder in folders:
        folder.mkdir()

    installs = development_installs(folders, os.environ)

    assert installs.locations == ()
    assert not calls.exists()


@pytest.fixture
def generated_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``src/`` layout project whose package imports a version module that its main checkout
    generated and git ignores (as setuptools-scm and hatch-vcs write one), installed in
    development mode into a real virtualenv first on ``PATH`` (the path entry such an install
    writes), with a worktree that has everything but that module."""
    repo = tmp_path / "genproject"
    (repo / "src" / "genpkg").mkdir(parents=True)
    (repo / "src" / "genpkg" / "__init__.py").write_text("from ._version import VERSION\n")
    (repo / "tests").mkdir()
    (repo / "tests" / "test_genpkg.py").write_text("import genpkg\n\n\ndef test_it():\n    pass\n")
    (repo / ".gitignore").write_text("src/*/_version.py\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a package with a generated version")
    (repo / "src" / "genpkg" / "_version.py").write_text("VERSION = '1.0.dev1'\n")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site_packages,) = venv.glob("lib/python*/site-packages")
    (site_packages / "genpkg.pth").write_text(f"{repo / 'src'}\n")
    monkeypatch.setenv("PATH", f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    worktree = tmp_path / "worktree"
    git(repo, "worktree", "add", "-q", "-b", "hyp", str(worktree))
    return worktree


def test_a_script_failing_only_to_import_a_module_its_worktree_lacks_is_inconclusive(
    generated_version: Path, write_script: WriteScript
) -> None:
    result = run_one(generated_version, write_script, 'python -c "import genpkg"')

    assert result.status is HypothesisStatus.INCONCLUSIVE
    assert "failed to import genpkg._version" in result.error_message
    assert result.code_under_test is not None
    assert result.code_under_test.missing_modules == ("genpkg._version",)
    (warning,) = result.code_under_test.warnings
    assert warning.startswith("genpkg.pth: the module src/genpkg/_version.py was generated in")


def test_a_verdict_warned_about_the_code_it_tested_is_never_reused(
    run_pytest: RunPytest, generated_version: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """What the warning asks for (a .venv, a build) is what git ignores: a stored verdict
    would outlive it."""
    counter = tmp_path / "runs"
    write_script(generated_version, "h", f"echo run >> '{counter}'")

    for _ in range(2):
        result = run_pytest(f"--hypotheses={generated_version}", "--hypotheses-reuse=yes")

    assert len(counter.read_text().splitlines()) == 2
    result.stdout.fnmatch_lines(["*the verdict of h is not stored for reuse*"])


#: Scripts whose failure is the missing module's import, however they show it.
FAILED_IMPORTS = {
    "traceback on stdout": 'python -c "import genpkg" 2>&1',
    "pytest collection error": f"{sys.executable} -m pytest -q -p no:cacheprovider tests",
}


@pytest.mark.parametrize("way", sorted(FAILED_IMPORTS))
def test_a_failed_import_of_a_missing_module_is_inconclusive_wherever_it_is_printed(
    generated_version: Path, write_script: WriteScript, way: str
) -> None:
    result = run_one(generated_version, write_script, FAILED_IMPORTS[way])

    assert result.status is HypothesisStatus.INCONCLUSIVE, result.stdout + result.stderr


#: Scripts that fail for another reason, the missing module aside.
OTHER_FAILURES = {
    "exit 1": "exit 1",
    "a failure after a warning naming the module": (
        "python - <<'EOF'\n"
        "import sys\n"
        "try:\n"
        "    import genpkg\n"
        "except ImportError as error:\n"
        "    print('version unknown:', error, file=sys.stderr)\n"
        "assert 1 + 2 == 4, 'the bug'\n"
        "EOF"
    ),
}


@pytest.mark.parametrize("failure", sorted(OTHER_FAILURES))
def test_a_script_failing_for_another_reason_beside_a_missing_module_still_decides(
    generated_version: Path, write_script: WriteScript, failure: str
) -> None:
    result = run_one(generated_version, write_script, OTHER_FAILURES[failure])

    assert result.status is HypothesisStatus.SUPPORTED, result.stderr


@pytest.mark.usefixtures("venv_first")
def test_a_worktree_venv_without_the_project_is_warned(
    worktree: Callable[[str, str], Path], write_script: WriteScript
) -> None:
    """An unfinished setup step leaves such a venv: its scripts would test nothing of the
    worktree's."""
    tree = worktree("half-made", "fixed")
    venv = tree / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)

    result = run_one(tree, write_script, "exit 0")

    assert result.code_under_test is not None
    (warning,) = result.code_under_test.warnings
    assert warning.startswith(f"the worktree's own environment {venv} holds no install of ")
    assert "flatpkg" in warning


@pytest.mark.usefixtures("venv_first")
def test_a_setup_step_that_installs_the_project_into_the_worktree_venv_clears_the_warning(
    worktree: Callable[[str, str], Path], write_script: WriteScript
) -> None:
    """A venv left half-made by an earlier run is finished by this run's setup step."""
    tree = worktree("finished-by-setup", "fixed")
    make_virtualenv(tree / ".venv")
    write_script(tree, "h", "python -m flatpkg")
    install = " ".join([".venv/bin/python", *OFFLINE_INSTALL])
    config = FalsificationConfig(setup_command=f"{install} -e ./flatdist")

    result = TestExecutor(config).execute_single(Hypothesis("h", "the bug"), tree)

    assert result.code_under_test is not None
    assert result.code_under_test.warnings == ()
    assert result.stdout.strip() == str(tree / "flatdist" / "flatpkg" / "__init__.py")


@pytest.mark.usefixtures("venv_first")
def test_a_worktree_venv_with_the_project_installed_from_the_worktree_is_not_warned(
    worktree: Callable[[str, str], Path], write_script: WriteScript
) -> None:
    tree = worktree("installed", "fixed")
    install = [str(make_virtualenv(tree / ".venv")), *OFFLINE_INSTALL, "-e", "./flatdist"]
    subprocess.run(install, cwd=tree, check=True, capture_output=True)

    result = run_one(tree, write_script, "python -m flatpkg")

    assert result.code_under_test is not None
    assert result.code_under_test.warnings == ()
    assert result.stdout.strip() == str(tree / "flatdist" / "flatpkg" / "__init__.py")


def test_a_warning_every_worktree_has_in_the_same_words_is_told_once() -> None:
    def record(worktree: str, *warnings: str) -> Dict[str, Any]:
        return {"worktree_path": worktree, "code_under_test": {"warnings": list(warnings)}}

    lacks = "pkg: src/pkg/_version.py is missing from the worktree {}, so it cannot import it"
    records = [record(f"/wt/h{n}", lacks.format(f"/wt/h{n}")) for n in range(6)]
    records.append(record("/wt/h9", "another warning"))

    assert run_warnings(records) == [
        lacks.format("/wt/h0") + " (the same for 5 more worktrees: /wt/h1, /wt/h2, /wt/h3 "
        "and 2 more)",
        "another warning",
    ]


#: A package whose C speedups fall back to pure Python, as MarkupSafe's and msgpack's do.
TINY_INIT = "try:\n    from . import _speed\nexcept ImportError:\n    _speed = None\n"
TINY_SPEED = (
    "#include <Python.h>\n"
    'static struct PyModuleDef D = {PyModuleDef_HEAD_INIT, "_speed", 0, -1, 0};\n'
    "PyMODINIT_FUNC PyInit__speed(void) { return PyModule_Create(&D); }\n"
)


@pytest.fixture
def uninstalled_c_project(tmp_path: Path) -> Path:
    """A repository with a flat package and the C source of its speedups, installed nowhere,
    built nowhere, and a worktree of it."""
    repo = tmp_path / "tiny"
    (repo / "tinyx").mkdir(parents=True)
    (repo / "tinyx" / "__init__.py").write_text(TINY_INIT)
    (repo / "tinyx" / "_speed.c").write_text(TINY_SPEED)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "tiny")
    git(repo, "worktree", "add", "-q", "--detach", str(tmp_path / "wt"), "HEAD")
    return tmp_path / "wt"


def test_a_script_that_tries_an_extension_built_only_in_the_main_checkout_is_inconclusive(
    uninstalled_c_project: Path, write_script: WriteScript
) -> None:
    """Built in place in the main checkout, installed nowhere: the worktree's script ran the
    pure-Python fallback and tested none of its C code, and msgpack's wrong fix of the C
    code came out confirmed."""
    main = uninstalled_c_project.parent / "tiny"
    (main / "tinyx" / f"_speed{EXTENSION_SUFFIXES[0]}").write_bytes(b"")

    result = run_one(uninstalled_c_project, write_script, "python3 -c 'import tinyx'")

    assert result.status is HypothesisStatus.INCONCLUSIVE, result.error_message
    assert "tinyx._speed" in result.error_message
    assert result.code_under_test is not None
    assert result.code_under_test.unbuilt_extensions == ("tinyx._speed",)


@pytest.mark.parametrize("source", ["_speedmodule.c", "python/_speed.c"])
def test_a_script_that_tries_a_top_level_extension_built_only_in_the_main_checkout_is_inconclusive(
    tmp_path: Path, write_script: WriteScript, source: str
) -> None:
    """pyrsistent's ``pvectorc`` is a module of its own at the repository's root, built from
    ``pvectorcmodule.c``, and ujson's from ``python/ujson.c``: only packages were searched for
    sources, and new-user trials' wrong fixes of their C code came out confirmed."""
    main = tmp_path / "tiny"
    (main / source).parent.mkdir(parents=True)
    (main / source).write_text(TINY_SPEED)
    git(main, "init", "-q", "-b", "main")
    git(main, "add", "-A")
    git(main, "commit", "-q", "-m", "tiny")
    git(main, "worktree", "add", "-q", "--detach", str(tmp_path / "wt"), "HEAD")
    (main / f"_speed{EXTENSION_SUFFIXES[0]}").write_bytes(b"")

    result = run_one(tmp_path / "wt", write_script, find_speed("top"))

    assert result.status is HypothesisStatus.INCONCLUSIVE, result.error_message
    assert result.code_under_test is not None
    assert result.code_under_test.unbuilt_extensions == ("_speed",)


needs_a_compiler = pytest.mark.skipif(
    sysconfig.get_config_var("CC") is None or shutil.which("cc") is None,
    reason="needs a C compiler to build the extension",
)


@needs_a_compiler
def test_a_top_level_extension_of_an_editable_install_missing_from_the_worktree_is_watched(
    tmp_path: Path, write_script: WriteScript, monkeypatch: pytest.MonkeyPatch
) -> None:
    """setuptools' editable finder maps a top-level extension module to its build in the
    main checkout; the worktree lacks the build, which was taken for a layout of its own
    ("check the worktree's layout"), unwatched: the trial's worktrees ran the main checkout's
    build, or the fallback, and a real fix came out FALSIFIED."""
    top_level = "try:\n    import _speed\nexcept ImportError:\n    _speed = None\n"
    main = committed_c_project(tmp_path / "tiny", top_level, "_speedmodule.c", "_speed")
    tree = installed_worktree(main, tmp_path, monkeypatch, "-e")

    result = run_one(tree, write_script, "python -c 'import tinyx'")

    assert_watched(result, "_speed")
    assert result.code_under_test is not None
    assert not [w for w in result.code_under_test.warnings if "does not exist" in w]


def installed_worktree(
    main: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *options: str
) -> Path:
    """``main`` installed (with pip's ``options``: ``-e`` for a development install) into a
    new virtual environment, first on ``PATH``; and a worktree of it."""
    python = venv_with(tmp_path / "venv", *options, str(main))
    git(main, "worktree", "add", "-q", "--detach", str(tmp_path / "wt"), "HEAD")
    monkeypatch.setenv("PATH", f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    return tmp_path / "wt"


def assert_watched(result: TestExecutionResult, module: str) -> None:
    """The script looked for the extension ``module``, which its worktree has no build of."""
    assert result.status is HypothesisStatus.INCONCLUSIVE, result.error_message
    assert result.code_under_test is not None
    assert result.code_under_test.unbuilt_extensions == (module,)


def committed_c_project(
    main: Path,
    init: str = TINY_INIT,
    source: str = "tinyx/_speed.c",
    module: str = "tinyx._speed",
) -> Path:
    """``main``: a repository of the package ``tinyx`` (``init``), whose C speedups (the
    extension ``module``, from ``source``) fall back to pure Python, with the ``setup.py``
    that builds them; committed, built nowhere."""
    (main / "tinyx").mkdir(parents=True)
    (main / "tinyx" / "__init__.py").write_text(init)
    (main / source).write_text(TINY_SPEED)
    (main / "setup.py").write_text(
        "from setuptools import Extension, setup\n"
        'setup(name="tinyx", version="1.0", packages=["tinyx"],\n'
        f'      ext_modules=[Extension("{module}", ["{source}"])])\n'
    )
    (main / ".gitignore").write_text("build/\n*.so\n*.egg-info/\n.venv/\n")
    git(main, "init", "-q", "-b", "main")
    git(main, "add", "-A")
    git(main, "commit", "-q", "-m", "tiny")
    return main


@needs_a_compiler
def test_an_extension_installed_only_as_a_plain_copy_is_watched_in_a_worktree_without_a_build(
    tmp_path: Path, write_script: WriteScript, monkeypatch: pytest.MonkeyPatch
) -> None:
    """simplejson installed with ``pip install .`` (or from an index) and built in no
    checkout: a script run in a worktree imports the worktree's package, which has no build
    and runs its pure-Python fallback. A trial's C bug came out FALSIFIED and a wrong C fix
    SUPPORTED, beside a warning that every script imports the installed copy."""
    tree = installed_worktree(committed_c_project(tmp_path / "tiny"), tmp_path, monkeypatch)

    result = run_one(tree, write_script, "python -c 'import tinyx'")

    assert_watched(result, "tinyx._speed")


@needs_a_compiler
def test_an_extension_installed_as_a_plain_copy_in_the_worktree_s_own_venv_is_watched(
    tmp_path: Path, write_script: WriteScript, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worktree's own .venv, as the docs advise, but with ``pip install .``: the build
    is in the venv, the scripts import the worktree's package, with no build beside it, and
    a trial's verdicts were those of the pure-Python fallback."""
    main = committed_c_project(tmp_path / "tiny")
    worktree = tmp_path / "wt"
    git(main, "worktree", "add", "-q", "--detach", str(worktree), "HEAD")
    venv_with(worktree / ".venv", str(worktree))
    monkeypatch.delenv("PYTHONPATH", raising=False)

    result = run_one(worktree, write_script, "python -c 'import tinyx'")

    assert_watched(result, "tinyx._speed")
    assert result.code_under_test is not None
    assert result.code_under_test.venv is not None


def test_the_copies_a_build_leaves_in_its_build_folder_are_no_extension_modules(
    tmp_path: Path,
) -> None:
    """A project whose root is on the path (a top-level module, installed in development
    mode) had ``build/lib.linux-x86_64-cpython-311/fastmod`` among its extension modules,
    named so in a warning: no import reaches a folder whose name is no identifier."""
    suffix = EXTENSION_SUFFIXES[0]
    for path in (f"_speed{suffix}", f"pkg/_fast{suffix}", f"build/lib.linux-x86_64/_speed{suffix}"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"")

    found = sorted(path.relative_to(tmp_path).as_posix() for path in _extensions([tmp_path]))

    assert found == [f"_speed{suffix}", f"pkg/_fast{suffix}"]


def test_a_script_of_a_project_built_nowhere_keeps_its_verdict(
    uninstalled_c_project: Path, write_script: WriteScript
) -> None:
    """Every checkout runs the pure-Python fallback: the worktree tests what the project
    runs, and a hypothesis about its Python code must not stay inconclusive for ever."""
    result = run_one(uninstalled_c_project, write_script, "python3 -c 'import tinyx'")

    assert result.status is HypothesisStatus.FALSIFIED, result.error_message
    assert result.code_under_test is not None
    assert result.code_under_test.unbuilt_extensions == ()


def test_a_script_whose_worktree_has_its_own_build_keeps_its_verdict(
    uninstalled_c_project: Path, write_script: WriteScript
) -> None:
    (uninstalled_c_project / "tinyx" / f"_speed{EXTENSION_SUFFIXES[0]}").write_bytes(b"")

    result = run_one(uninstalled_c_project, write_script, "python3 -c 'import tinyx'")

    assert result.code_under_test is not None
    assert result.code_under_test.unbuilt_extensions == ()
    assert result.status is not HypothesisStatus.INCONCLUSIVE


def test_a_script_whose_python_did_not_find_its_worktree_s_own_package_is_inconclusive(
    uninstalled_c_project: Path, write_script: WriteScript
) -> None:
    """A script file in .falsification/ puts that folder first on the path, not the
    worktree's root: the flat package was not found, and a fix came out as not working."""
    checker = uninstalled_c_project / ".falsification" / "check.py"
    checker.parent.mkdir(exist_ok=True)
    checker.write_text("import tinyx\n")

    result = run_one(uninstalled_c_project, write_script, "python3 .falsification/check.py")

    assert result.status is HypothesisStatus.INCONCLUSIVE, result.error_message
    assert "failed to import tinyx, which its worktree has" in result.error_message


def test_a_script_failing_to_import_another_package_keeps_its_verdict(
    uninstalled_c_project: Path, write_script: WriteScript
) -> None:
    result = run_one(uninstalled_c_project, write_script, "python3 -c 'import nowhere_else'")

    assert result.status is HypothesisStatus.SUPPORTED, result.error_message


def test_a_missing_module_named_like_a_folder_of_the_worktree_keeps_its_verdict(
    uninstalled_c_project: Path, write_script: WriteScript
) -> None:
    """A folder that is no package (data, build output) is not the worktree's own code."""
    (uninstalled_c_project / "data").mkdir()
    checker = uninstalled_c_project / ".falsification" / "check.py"
    checker.parent.mkdir(exist_ok=True)
    checker.write_text("import data\n")  # its own folder first on the path, not the root

    result = run_one(uninstalled_c_project, write_script, "python3 .falsification/check.py")

    assert result.status is HypothesisStatus.SUPPORTED, result.error_message
