"""checkpoints.md: the real file, table = block, round trips, and one-line errors that name the line."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from regress_fixtures import CHECKPOINTS_MD, ManifestWriter, manifest_text, scripted_entry

from gpbench.cli import cli
from gpbench.regress import reference
from gpbench.regress.manifest import (
    HEADER,
    ManifestError,
    dump_block,
    load_manifest,
    metric_problem,
    parse_block,
    render_table,
    task_statuses,
    to_data,
    with_entries,
)
from gpbench.regress.run import packaged_data
from gpbench.tasks.registry import get_task

PAPER_CHECKPOINTS = ("gp-l-init", "gp-vl-init", "virl-l-init", "virl-vl-init")


def test_the_repository_manifest_loads_and_its_table_equals_its_block() -> None:
    manifest = load_manifest(CHECKPOINTS_MD)  # raises on any table/block difference
    names = [e.name for e in manifest.entries]
    assert names == [*PAPER_CHECKPOINTS, "tiny-cpu-reference"]
    assert manifest.alpha == 0.01
    # Independently of check_table_matches: the rows between the markers are the rendering.
    first, end = manifest.table
    table = [line for line in manifest.lines[first:end] if line.strip()]
    assert table == render_table(manifest.entries)


def test_the_paper_checkpoints_are_listed_as_the_issue_asks() -> None:
    manifest = load_manifest(CHECKPOINTS_MD)
    for name in PAPER_CHECKPOINTS:
        entry = manifest.entry(name)
        assert entry.kind == "hub" and entry.source.startswith("tianzhechu/")
        assert entry.needs_gpu and entry.backend == "hf"
        assert "Llama 3.2 Community License" in entry.licence
        assert "mllama" in entry.architecture and "0.10.2" in entry.backend_note
    gp_l = manifest.entry("gp-l-init").checks[0]
    assert (gp_l.task, gp_l.split, gp_l.n, gp_l.seed, gp_l.max_tokens, gp_l.budget) == (
        "gp-l",
        "ood-rule",
        234,
        42,
        256,
        5,
    )
    assert [(e.metric, e.rate) for e in gp_l.expect] == [("success", 0.115)]  # docs/tasks.md §4
    # The other tasks' data differ from the paper's: information only.
    for name in PAPER_CHECKPOINTS[1:]:
        for check in manifest.entry(name).checks:
            assert not check.expect and check.paper


def test_the_reference_entry_points_where_the_build_script_writes() -> None:
    entry = load_manifest(CHECKPOINTS_MD).entry("tiny-cpu-reference")
    assert entry.kind == "path" and not entry.needs_gpu
    # A relative path not beside the manifest is the shipped data's (what a wheel holds).
    assert (packaged_data() / entry.source).resolve() == reference.FOLDER
    assert "scripts/build_reference_checkpoint.py" in entry.build
    assert (CHECKPOINTS_MD.parent / "scripts/build_reference_checkpoint.py").is_file()
    check = entry.checks[0]
    metrics = {e.metric for e in check.expect}
    # Success of a tiny model is near zero: status, parse and truncation rates carry the check.
    assert {"success", "parse_rate", "truncation_rate"} <= metrics
    assert any(m.startswith("status:") for m in metrics)
    assert "gpbench" in check.recorded and "--update" not in check.recorded


def test_block_round_trips_through_dump_and_parse() -> None:
    manifest = load_manifest(CHECKPOINTS_MD)
    text = dump_block(to_data(manifest.alpha, manifest.entries))
    entries, alpha = parse_block(text, 1, "x")
    strip = [
        [(e.name, e.checks[i].expect, e.checks[i].paper) for i in range(len(e.checks))]
        for e in entries
    ]
    orig = [[(e.name, c.expect, c.paper) for c in e.checks] for e in manifest.entries]
    assert alpha == manifest.alpha and strip == orig
    assert json.loads(text) == to_data(manifest.alpha, manifest.entries)
    # One expectation per line: --update diffs stay readable.
    assert '"success": {"rate": 0.115, "tol": 0.05}' in text


def test_with_entries_rewrites_only_block_and_table(write_manifest: ManifestWriter) -> None:
    path = write_manifest([scripted_entry()])
    manifest = load_manifest(path)
    assert with_entries(manifest, manifest.entries) == path.read_text()
    text = with_entries(manifest, (), block=False)
    assert "Prose that --update must keep." in text and "Closing prose." in text
    assert "| scripted |" not in text and '"name": "scripted"' in text


def _table_line(path: Path, name: str) -> int:
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if line.startswith(f"| {name} |"))


def test_a_table_cell_that_differs_from_the_block_is_named_with_its_line(
    write_manifest: ManifestWriter,
) -> None:
    path = write_manifest([scripted_entry()])
    text = path.read_text().replace("| success 70.0% ± 5.0 |", "| success 75.0% ± 5.0 |")
    path.write_text(text)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{_table_line(path, 'scripted')}: ")
    assert "'expected ± tolerance' reads 'success 75.0% ± 5.0'" in message
    assert "'success 70.0% ± 5.0'" in message and "--write-table" in message
    assert "\n" not in message
    load_manifest(path, check_table=False)  # --write-table can still read it


def test_missing_and_extra_table_rows_are_errors(write_manifest: ManifestWriter) -> None:
    two = [scripted_entry("a"), scripted_entry("b")]
    path = write_manifest(two)
    rendered = render_table(
        parse_block(dump_block({"version": 1, "alpha": 0.01, "checkpoints": two}), 1, "m")[0]
    )
    path.write_text(manifest_text(two, table=rendered[:-1]))
    with pytest.raises(ManifestError, match="the table has 1 rows but the JSON block has 2 checks"):
        load_manifest(path)
    path.write_text(manifest_text(two[:1], table=rendered))
    with pytest.raises(ManifestError, match="the table has 2 rows but the JSON block has 1 checks"):
        load_manifest(path)
    swapped = [*rendered[:2], rendered[3], rendered[2]]  # rows a and b in the wrong order
    path.write_text(manifest_text(two, table=swapped))
    with pytest.raises(ManifestError, match=r"table row a gp-l id .*: column 'name' reads 'b'"):
        load_manifest(path)
    path.write_text(
        manifest_text(two, table=[rendered[0].replace("licence", "license"), *rendered[1:]])
    )
    with pytest.raises(ManifestError, match="the table header must be"):
        load_manifest(path)


def _entry_with(change: Any) -> list[dict[str, Any]]:
    entry = scripted_entry()
    change(entry)
    return [entry]


def _set(path: str, value: Any) -> Any:
    def change(entry: dict[str, Any]) -> None:
        target: Any = entry
        keys = path.split(".")
        for key in keys[:-1]:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[keys[-1]] = value

    return change


def _drop(path: str) -> Any:
    def change(entry: dict[str, Any]) -> None:
        target: Any = entry
        keys = path.split(".")
        for key in keys[:-1]:
            target = target[int(key)] if isinstance(target, list) else target[key]
        del target[keys[-1]]

    return change


# (what is wrong, how to break the entry, text in the message, text on the named line)
BAD_ENTRIES = [
    (
        "unknown entry key",
        _set("licnce", "x"),
        "checkpoints[0].licnce: unknown key 'licnce'; did you mean 'licence'?",
        '"licnce"',
    ),
    ("bad name", _set("name", "GP L"), "checkpoints[0].name: must be a name matching", '"name"'),
    ("two sources", _set("path", "x"), "checkpoints[0]: give exactly one of hub", '"name"'),
    (
        "bad hub id",
        lambda e: (e.pop("policy"), e.update(hub="not a hub id", backend="hf")),
        "checkpoints[0].hub: must be a hub id",
        '"hub"',
    ),
    (
        "policy on hf",
        _set("backend", "hf"),
        "checkpoints[0].backend: a policy goes with backend scripted",
        '"backend"',
    ),
    (
        "unknown backend",
        lambda e: (e.pop("policy"), e.update(path="p", backend="vlm")),
        "checkpoints[0].backend: must be one of hf, vllm, scripted, got 'vlm'; did you mean 'vllm'?",
        '"backend"',
    ),
    (
        "needs_gpu not bool",
        _set("needs_gpu", "yes"),
        "checkpoints[0].needs_gpu: must be true or false",
        '"needs_gpu"',
    ),
    (
        "no checks",
        _set("checks", []),
        "checkpoints[0].checks: must be a non-empty list",
        '"checks"',
    ),
    (
        "pipe in a cell",
        _set("licence", "a | b"),
        "checkpoints[0].licence: may not hold '|'",
        '"licence"',
    ),
    (
        "unknown task",
        _set("checks.0.task", "gp-x"),
        "checkpoints[0].checks[0].task: unknown task",
        '"task"',
    ),
    (
        "unknown split",
        _set("checks.0.split", "ood_rule"),
        "checkpoints[0].checks[0].split: unknown split 'ood_rule' for gp-l; did you mean 'ood-rule'?",
        '"split"',
    ),
    (
        "unknown check key",
        _set("checks.0.sample", 2),
        "checkpoints[0].checks[0].sample: unknown key 'sample'; did you mean 'samples'?",
        '"sample"',
    ),
    (
        "n not an int",
        _set("checks.0.n", 1.5),
        "checkpoints[0].checks[0].n: must be an integer >= 1, got 1.5",
        '"n"',
    ),
    (
        "budget zero",
        _set("checks.0.budget", 0),
        "checkpoints[0].checks[0].budget: must be an integer >= 1, got 0",
        '"budget"',
    ),
    (
        "decoding lacks a key",
        _drop("checks.0.decoding.top_p"),
        "checkpoints[0].checks[0].decoding.top_p: is required",
        '"decoding"',
    ),
    (
        "bad temperature",
        _set("checks.0.decoding.temperature", -1),
        "checkpoints[0].checks[0].decoding: temperature must be >= 0",
        '"decoding"',
    ),
    (
        "unknown metric",
        _set("checks.0.expect", {"sucess": {"rate": 0.1, "tol": 0.1}}),
        "checkpoints[0].checks[0].expect.sucess: unknown metric 'sucess'; did you mean 'success'?",
        '"sucess"',
    ),
    (
        "unknown status",
        _set("checks.0.expect", {"status:wrong_vale": {"rate": 0.1, "tol": 0.1}}),
        "checkpoints[0].checks[0].expect.status:wrong_vale: unknown status 'wrong_vale' for gp-l; did you mean 'wrong_value'?",
        '"status:wrong_vale"',
    ),
    (
        "per-step on gp-l",
        _set("checks.0.expect", {"per_step_accuracy": {"rate": 0.1, "tol": 0.1}}),
        "checkpoints[0].checks[0].expect.per_step_accuracy: per_step_accuracy is for multi-decision tasks",
        '"per_step_accuracy"',
    ),
    (
        "rate in percent",
        _set("checks.0.expect", {"success": {"rate": 11.5, "tol": 0.05}}),
        "checkpoints[0].checks[0].expect.success.rate: must be a fraction in [0, 1] (0.115 for 11.5%), got 11.5",
        '"success"',
    ),
    (
        "expectation shape",
        _set("checks.0.expect", {"success": 0.5}),
        'checkpoints[0].checks[0].expect.success: must be {"rate": r, "tol": t}',
        '"success"',
    ),
    (
        "nothing to compare",
        _drop("checks.0.expect"),
        "checkpoints[0].checks[0]: nothing to compare",
        '"task"',
    ),
    (
        "paper out of range",
        _set("checks.0.paper", {"success": 2}),
        "checkpoints[0].checks[0].paper.success: must be a fraction in [0, 1]",
        '"paper"',
    ),
]


@pytest.mark.parametrize(
    ("what", "change", "message", "on_line"), BAD_ENTRIES, ids=[c[0] for c in BAD_ENTRIES]
)
def test_manifest_errors_are_one_line_and_name_the_line(
    write_manifest: ManifestWriter, what: str, change: Any, message: str, on_line: str
) -> None:
    entries = _entry_with(change)
    path = write_manifest(entries, table=render_table(()))  # the table is checked after the block
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    text = str(info.value)
    assert "\n" not in text, what
    assert message in text, (what, text)
    match = re.match(rf"{re.escape(str(path))}:(\d+): ", text)
    assert match, text
    line = path.read_text().splitlines()[int(match.group(1)) - 1]
    assert on_line in line, (what, line)


def test_duplicate_names_point_at_the_second(write_manifest: ManifestWriter) -> None:
    path = write_manifest([scripted_entry("a"), scripted_entry("a")], table=render_table(()))
    with pytest.raises(ManifestError, match="checkpoint name 'a' is used twice") as info:
        load_manifest(path)
    line = int(str(info.value).split(":")[1])
    lines = path.read_text().splitlines()
    assert [i + 1 for i, text in enumerate(lines) if '"name": "a"' in text][1] == line


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace('"alpha": 0.01,', '"alpha": 0.01'),
            "not valid JSON: Expecting ',' delimiter",
        ),
        (
            lambda t: t.replace('"alpha": 0.01', '"alpha": 5'),
            "alpha: must be a number in (0, 1), got 5",
        ),
        (
            lambda t: t.replace('"version": 1', '"version": 2'),
            "version: must be 1, the version this gpbench reads, got 2",
        ),
        (
            lambda t: t.replace("```json gpbench-regress", "```json"),
            "expected exactly one fenced block",
        ),
        (lambda t: t + "\n```json gpbench-regress\n{}\n```\n", "found 2"),
        (lambda t: t.replace("```\n\nClosing", "\n\nClosing"), "never closed"),
        (
            lambda t: t.replace("<!-- gpbench-regress:table:end -->", ""),
            "expected exactly one table end line '<!-- gpbench-regress:table:end -->', found 0",
        ),
    ],
)
def test_file_level_errors(write_manifest: ManifestWriter, edit: Any, message: str) -> None:
    path = write_manifest([scripted_entry()])
    path.write_text(edit(path.read_text()))
    with pytest.raises(ManifestError, match=re.escape(message)) as info:
        load_manifest(path)
    assert str(info.value).startswith(f"{path}:") and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("old", "new", "key", "object_starts_with"),
    [
        # the second "rate" of one expectation: only the last would be tested
        ('"rate": 0.7, "tol": 0.05}', '"rate": 0.7, "tol": 0.05, "rate": 0.2}', "rate", "success"),
        ('"backend": "scripted",', '"backend": "scripted", "backend": "hf",', "backend", "{"),
        ('"version": 1,', '"version": 1, "version": 1,', "version", "{"),
    ],
)
def test_a_key_given_twice_in_one_object_is_an_error_naming_its_object(
    write_manifest: ManifestWriter, old: str, new: str, key: str, object_starts_with: str
) -> None:
    path = write_manifest([scripted_entry()])
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    message = str(info.value)
    assert f"key {key!r} appears twice in the object that starts on this line" in message
    line = int(message.split(":")[1])
    assert object_starts_with in path.read_text().splitlines()[line - 1]
    assert '"' + key + '"' in "".join(path.read_text().splitlines()[line - 1 : line + 12])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('"alpha": 0.01', '"alpha": ' + "[" * 100_000), "nested too deeply"),
        (lambda t: t.replace('"n": 60', '"n": ' + "6" * 5000), "an integer with too many digits"),
        (
            lambda t: t.replace('"licence": "n/a"', '"licence": "n/a \\ud800"'),
            "checkpoints[0].licence: holds a lone surrogate",
        ),
    ],
)
def test_json_python_cannot_take_is_one_line(
    write_manifest: ManifestWriter, edit: Any, message: str
) -> None:
    path = write_manifest([scripted_entry()])
    path.write_text(edit(path.read_text()))
    with pytest.raises(ManifestError, match=re.escape(message)) as info:
        load_manifest(path)
    assert str(info.value).startswith(f"{path}:") and "\n" not in str(info.value)
    result = CliRunner().invoke(cli, ["regress", "--manifest", str(path)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stderr.count("\n") == 1 and message in result.stderr


def test_a_surrogate_in_backend_settings_is_written_as_its_escape() -> None:
    data = {"version": 1, "alpha": 0.01, "checkpoints": [{"backend_settings": {"x": "a\ud800"}}]}
    text = dump_block(data)
    text.encode("utf-8")
    assert json.loads(text) == data


def test_json_syntax_error_names_the_file_line(write_manifest: ManifestWriter) -> None:
    path = write_manifest([scripted_entry()])
    lines = path.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if '"licence"' in line)
    lines[index] = lines[index].rstrip(",")  # drop a comma
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert str(info.value).startswith(f"{path}:{index + 2}: the JSON block is not valid JSON")


def test_cli_reports_a_manifest_error_in_one_line_and_exits_1(
    write_manifest: ManifestWriter, tmp_path: Path
) -> None:
    path = write_manifest(_entry_with(_set("checks.0.task", "gp-x")), table=render_table(()))
    result = CliRunner().invoke(cli, ["regress", "--manifest", str(path)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {path}:") and result.output.count("\n") == 1
    missing = CliRunner().invoke(cli, ["regress", "--manifest", str(tmp_path / "none.md")])
    assert missing.exit_code == 1 and "no such file; pass --manifest PATH" in missing.output


def test_header_constant_matches_the_rendered_table() -> None:
    assert render_table(())[0] == "| " + " | ".join(HEADER) + " |"
    assert render_table(())[1].count("---") == len(HEADER)


def test_an_error_names_the_json_path_and_line_of_the_entry_and_check_it_is_in(
    write_manifest: ManifestWriter,
) -> None:
    second = scripted_entry("b")
    second["checks"].append({**second["checks"][0], "split": "ood-rule", "n": 0})
    path = write_manifest([scripted_entry("a"), second], table=render_table(()))
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    message = str(info.value)
    assert "checkpoints[1].checks[1].n: must be an integer >= 1, got 0" in message
    line = int(message.split(":")[1])
    lines = path.read_text().splitlines()
    assert lines[line - 1].strip() == '"n": 0,'
    assert any('"split": "ood-rule"' in text for text in lines[line - 4 : line])


def test_a_missing_key_is_named_at_its_object(write_manifest: ManifestWriter) -> None:
    path = write_manifest(_entry_with(_drop("licence")), table=render_table(()))
    with pytest.raises(ManifestError, match=r"checkpoints\[0\]\.licence: is required") as info:
        load_manifest(path)
    line = int(str(info.value).split(":")[1])
    assert '"name": "scripted"' in path.read_text().splitlines()[line - 1]


def test_lines_are_found_in_a_block_written_on_one_line(tmp_path: Path) -> None:
    entry = _entry_with(_set("checks.0.expect", {"success": {"rate": 0.5, "tol": 2}}))
    block = json.dumps({"version": 1, "alpha": 0.01, "checkpoints": entry})
    with pytest.raises(ManifestError) as info:
        parse_block(block, 7, "m.md")
    assert str(info.value) == (
        "m.md:7: checkpoints[0].checks[0].expect.success.tol: must be a fraction in [0, 1] "
        "(0.115 for 11.5%), got 2"
    )
    twice = block.replace('"tol": 2}', '"tol": 0.1, "tol": 0.2}')
    with pytest.raises(ManifestError, match="key 'tol' appears twice"):
        parse_block(twice, 7, "m.md")


def test_statuses_are_the_checked_task_s_own() -> None:
    gp_l, virl_l = get_task("gp-l"), get_task("virl-l")
    for task in (gp_l, virl_l):
        statuses = task_statuses(task)
        every_mode = {s for mode in task.verifier_modes for s in task.answer_statuses(mode)}
        assert set(statuses) == every_mode | {"none"}
        assert all(metric_problem(f"status:{s}", task) is None for s in statuses)
    refused = metric_problem("status:correct_action", gp_l)  # a V-IRL status
    assert refused is not None and refused.startswith("unknown status 'correct_action' for gp-l")
    assert refused.endswith(f"(statuses: {', '.join(task_statuses(gp_l))})")
    assert metric_problem("per_step_accuracy", virl_l) is None


def test_a_verifier_mode_is_one_of_the_task_s_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_task("gp-l"), "verifier_modes", ("gpbench",))
    block = dump_block(
        {"version": 1, "alpha": 0.01, "checkpoints": [scripted_entry(mode="reference")]}
    )
    with pytest.raises(
        ManifestError, match=r"checks\[0\]\.mode: must be one of gpbench, got 'reference'"
    ):
        parse_block(block, 1, "m.md")


def test_an_unknown_verifier_mode_is_named_with_the_choices() -> None:
    block = dump_block({"version": 1, "alpha": 0.01, "checkpoints": [scripted_entry(mode="paper")]})
    with pytest.raises(
        ManifestError, match=r"mode: must be one of gpbench, reference, got 'paper'"
    ):
        parse_block(block, 1, "m.md")


def test_brackets_and_quotes_inside_strings_do_not_move_the_named_line(
    write_manifest: ManifestWriter,
) -> None:
    tricky = 'see {"x": [1, 2]} and \\"quoted\\" text, like a key: "budget": 9'
    entry = scripted_entry(recorded=tricky, budget=0)
    entry["backend_note"] = '{"n": 5}'
    path = write_manifest([entry], table=render_table(()))
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    line = int(str(info.value).split(":")[1])
    assert path.read_text().splitlines()[line - 1].strip() == '"budget": 0,'
    assert "checkpoints[0].checks[0].budget: must be an integer >= 1, got 0" in str(info.value)
