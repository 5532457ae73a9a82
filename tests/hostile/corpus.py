"""The hostile-input corpus: crafted files and argument lists, each with the exit code and the
one error line it must give (a regular expression searched in that line).

A case is `Case(id, argv, code, error, files)`. `argv` may use `{d}` (the case's own folder),
`{plan}` (a copy of examples/70b-home-lab.fplan, a plan the real engine made), `{policy}`
(examples/policy.toml) and `{fifo}` (a named pipe that nobody writes). `files` maps a name in
`{d}` to bytes, or to a function of the example plan's JSON text returning bytes (mutations
of a real plan). `error=None` means the command must succeed (exit `code`, nothing on stderr
but notes). Files that cannot live in git (a FIFO, a 64 MiB file, thousands of nested
brackets) are made here, by code, for each run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

STUDIO = "mac-studio-m4-max-40c-128gb"
MINI = "mac-mini-m4-pro-20c-64gb"
HUGE = "1" + "0" * 30  # 10^30
HUGE_DIGITS = "9" * 5000  # past int()'s 4,300-digit limit
DEEP = 5000


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    code: int
    error: str | None  # regex for the one stderr line; None: success expected
    # bytes, a function of the example plan's text, or an int: a sparse file of that size
    files: dict[str, bytes | int | Callable[[str], bytes]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


def _plan_edit(fn: Callable[[dict], None]) -> Callable[[str], bytes]:
    def make(text: str) -> bytes:
        doc = json.loads(text)
        fn(doc)
        return json.dumps(doc, indent=1).encode()

    return make


def _text_edit(old: str, new: str, count: int = 1) -> Callable[[str], bytes]:
    def make(text: str) -> bytes:
        assert old in text, old
        return text.replace(old, new, count).encode()

    return make


def _machine(doc: dict) -> dict:
    return doc["plan"]["build"]["machines"][0]


def _set(path: tuple, value) -> Callable[[dict], None]:
    def fn(doc: dict) -> None:
        node = doc
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value

    return fn


DEEP_JSON = b'{"a": ' + b"[" * DEEP + b"]" * DEEP + b"}"
BIG_INT_JSON = b'{"model_type": "llama", "hidden_size": ' + HUGE_DIGITS.encode() + b"}"

CONFIG_OK = json.dumps(
    {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
    }
).encode()

CSV_HEAD = "title,price,currency,date,condition,source\n"
CSV_ROW = "Mac mini M4 Pro 20-core GPU 64GB,1899,USD,2026-01-10,used,ebay\n"

DEEP_TOML = b"a = " + b"[" * DEEP + b"]" * DEEP + b"\n"


def _cases() -> list[Case]:
    c: list[Case] = []
    add = c.append
    usage = r"error: argument "

    # -- numbers on the command line: every one refused where it enters -----------------------
    for flag, value, msg in [
        ("--count", HUGE, r"--count: '1000.*' is out of range: expected 1..1,000 machines"),
        ("--count", "0", r"--count: 0 is out of range: expected 1..1,000"),
        ("--count", "-5", r"--count: -5 is out of range"),
        ("--count", "nan", r"--count: 'nan' is not an integer"),
        ("--count", "1e3", r"--count: '1e3' is not an integer"),
        ("--count", "", r"--count: '' is not an integer"),
        ("--price-usd", "nan", r"--price-usd: 'nan' is not a finite number"),
        ("--price-usd", "inf", r"--price-usd: 'inf' is not a finite number"),
        ("--price-usd", "-1", r"--price-usd: -1 is out of range"),
        ("--price-usd", "0", r"--price-usd: 0 is out of range \(0, 1e\+09\]"),
        ("--price-usd", "1e300", r"--price-usd: 1e\+300 is out of range"),
        ("--price-usd", "1.2.3", r"--price-usd: '1.2.3' is not a number"),
        ("--price-date", "2024-13-45", r"--price-date: '2024-13-45' is not a date"),
        ("--price-date", "yesterday", r"--price-date: 'yesterday' is not a date"),
        ("--price-date", "1999-01-01", r"--price-date: 1999-01-01 is outside 2000"),
    ]:
        add(
            Case(
                f"add-machine {flag} {value[:12]}",
                ("plan", "add-machine", "{plan}", STUDIO, flag, value, "--no-db"),
                2,
                usage + msg,
            )
        )
    for argv, msg in [
        (("--duty-hours", "25"), r"--duty-hours: 25 is out of range \[0, 24\]"),
        (("--duty-hours", "nan"), r"--duty-hours: 'nan' is not a finite number"),
        (("--tariff", "inf"), r"--tariff: 'inf' is not a finite number"),
        (("--tariff", "-0.1"), r"--tariff: -0.1 is out of range"),
        (("--currency", "€€€"), r"--currency: '€€€' is not a 3-letter currency code"),
    ]:
        add(
            Case(
                f"plan new {argv[0]} {argv[1]}",
                ("plan", "new", "x", "--out", "{d}/x.fplan", "--no-db", *argv),
                2,
                usage + msg,
            )
        )
    for value, msg in [
        ("0", r"--context: 0 is out of range: expected 1..16,777,216 tokens"),
        (HUGE, r"--context: '1000.*' is out of range"),
        ("-1", r"--context: -1 is out of range"),
        ("nan", r"--context: 'nan' is not an integer"),
    ]:
        add(
            Case(
                f"add-model --context {value[:10]}",
                (
                    "plan",
                    "add-model",
                    "{plan}",
                    "llama-3.1-8b",
                    "--quant",
                    "Q4_K_M",
                    "--context",
                    value,
                    "--no-db",
                ),
                2,
                usage + msg,
            )
        )
    est = ("estimate", "--model", "llama-3.1-8b", "--machine", MINI, "--quant", "Q4_K_M")
    for extra, msg in [
        (("--context", HUGE), usage + r"--context: '1000.*' is out of range"),
        (
            ("--prompt-tokens", "1000000000000"),
            usage + r"--prompt-tokens: 1,000,000,000,000 is out",
        ),
        (("--prompt-tokens", "9000"), r"--prompt-tokens 9000 is more than --context 8192"),
        (("--depth", "-1"), usage + r"--depth: -1 is out of range"),
        (("--depth", "9000"), r"--depth 9000 is more than --context 8192"),
        (("--gpu-cores", "0"), usage + r"--gpu-cores: 0 is out of range"),
        (("--wired-limit-mb", "-1"), usage + r"--wired-limit-mb: -1 is out of range"),
        (("--macos", "banana"), r"--macos 'banana' is not a macOS version"),
        (("--runtime", "vllm"), r"unknown runtime 'vllm'"),
    ]:
        add(Case(f"estimate {extra[0]} {extra[1][:10]}", (*est, *extra), 2, msg))
    rec = ("recommend", "--model", "llama-3.1-8b", "--context", "8192")
    for extra, msg in [
        (("--budget-usd", "nan"), r"--budget-usd: 'nan' is not a finite number"),
        (("--budget-usd", "inf"), r"--budget-usd: 'inf' is not a finite number"),
        (("--budget-usd", "-1"), r"--budget-usd: -1 is out of range"),
        (("--max-watts", "nan"), r"--max-watts: 'nan' is not a finite number"),
        (("--min-decode-tps", "nan"), r"--min-decode-tps: 'nan' is not a finite number"),
        (("--hours-at-load", "25"), r"--hours-at-load: 25 is out of range"),
        (("--tariff", "nan"), r"--tariff: 'nan' is not a finite number"),
        (("--today", "2026-02-30"), r"--as-of/--today: '2026-02-30' is not a date"),
    ]:
        add(Case(f"recommend {extra[0]} {extra[1]}", (*rec, *extra), 2, usage + msg))
    add(
        Case(
            "recommend --context 0",
            ("recommend", "--model", "llama-3.1-8b", "--context", "0"),
            2,
            usage + r"--context: 0 is out of range",
        )
    )
    add(
        Case(
            "recommend typo model",
            ("recommend", "--model", "llama-3.1-70", "--context", "8"),
            2,
            r"unknown model 'llama-3.1-70'; did you mean llama-3.1-70b",
        )
    )
    for value, msg in [
        ("EUR=inf", r"--fx: 'inf' is not a finite number"),
        ("EUR=nan", r"--fx: 'nan' is not a finite number"),
        ("EUR=0", r"--fx: 0 is out of range \(0, 1e\+06\] USD per EUR"),
        ("EUR=-1", r"--fx: -1 is out of range"),
        ("EURO=1.1", r"--fx: 'EURO' is not a 3-letter currency code"),
        ("EUR", r"--fx: 'EUR': expected CODE=USD_PER_UNIT"),
    ]:
        add(
            Case(
                f"prices import --fx {value}",
                ("prices", "import", "{d}/p.csv", "--fx", value),
                2,
                usage + msg,
                {"p.csv": (CSV_HEAD + CSV_ROW).encode()},
            )
        )
    add(
        Case(
            "running-cost 10^20 machines",
            ("prices", "running-cost", f"{MINI}x{HUGE}"),
            2,
            r"count must be 1..1000",
        )
    )
    add(
        Case(
            "running-cost nan hours",
            ("prices", "running-cost", MINI, "--hours-at-load", "nan"),
            2,
            usage + r"--hours-at-load: 'nan' is not a finite number",
        )
    )
    clu = ("cluster", "--model", "llama-3.1-70b", "--quant", "Q4_K_M")
    add(
        Case(
            "cluster of 10^20 nodes",
            (*clu, "--node", f"{MINI}x100000000000000000000"),
            2,
            r"--node '.*x1000.*': count must be 1..64",
        )
    )
    add(
        Case(
            "cluster 3 x 30 nodes",
            (*clu, "--node", f"{MINI}x30", "--node", f"{MINI}x30", "--node", f"{MINI}x30"),
            2,
            r"more than 64 nodes in one cluster",
        )
    )
    add(
        Case(
            "cluster --context 10^30",
            (*clu, "--node", f"{MINI}x2", "--context", HUGE),
            2,
            usage + r"--context: '1000.*' is out of range",
        )
    )
    add(
        Case(
            "platform --context 10^30",
            ("platform", "layout", "--node", f"a={MINI}", "--context", HUGE),
            2,
            usage + r"--context: '1000.*' is out of range",
        )
    )
    for extra, msg in [
        (("--context", "0"), usage + r"--context: 0 is out of range"),
        (("--context", HUGE), usage + r"--context: '1000.*' is out of range"),
        (("--out", "/dev/null"), r"/dev/null: is a character device; ForgePlanner writes regular"),
        (("--out", "{d}/fifo.csv"), r"is a FIFO \(named pipe\); ForgePlanner writes regular"),
        (("--out", "{d}/nodir/s.csv"), r"directory '.*nodir' does not exist"),
        (("--out", "{d}/s.txt"), r"use a .csv or .parquet file name"),
    ]:
        add(Case(f"sweep {extra[0]} {extra[1][-10:]}", ("sweep", *extra), 2, msg))
    bi = ("bench", "run", "builtin")
    for extra, msg in [
        (("--decode-mb", "-5"), usage + r"--decode-mb: -5 is out of range"),
        (("--decode-mb", HUGE), usage + r"--decode-mb: '1000.*' is out of range"),
        (("--decode-mb", "1048576"), r"need 1024.0 GiB, more than half of this machine's"),
        (("--array-mb", "0"), usage + r"--array-mb: 0 is out of range"),
        (("--array-mb", "900000"), r"need .* GiB, more than half of this machine's"),
        (("--threads", "0"), usage + r"--threads: 0 is out of range"),
        (("--threads", "100000"), usage + r"--threads: 100,000 is out of range"),
        (("--threads", "1024"), r"--threads 1024 is more than 8 x the \d+ logical CPUs"),
        (("-r", "0"), usage + r"--repetitions/-r: 0 is out of range"),
    ]:
        add(Case(f"bench builtin {extra[0]} {extra[1][:8]}", (*bi, *extra), 2, msg))
    ll = ("bench", "run", "llama.cpp", "--gguf", "{d}/m.gguf")
    for extra, msg in [
        (("-p", "-5"), usage + r"-p/--n-prompt: -5 is out of range"),
        (("-p", "1,a"), usage + r"-p/--n-prompt: 'a' is not an integer"),
        (("-n", HUGE), usage + r"-n/--n-gen: '1000.*' is out of range"),
        (("--timeout", "nan"), usage + r"--timeout: 'nan' is not a finite number"),
        (("--timeout", "0"), usage + r"--timeout: 0 is out of range"),
        (("--threads", "-1"), usage + r"--threads: -1 is out of range"),
    ]:
        add(Case(f"bench llama.cpp {extra[0]} {extra[1][:8]}", (*ll, *extra), 2, msg))
    add(Case("bench show 0", ("bench", "show", "0"), 2, usage + r"ID: 0 is out of range"))
    add(Case("bench show 10^30", ("bench", "show", HUGE), 2, usage + r"ID: '1000.*' is out of"))
    add(
        Case(
            "plan load --version 0",
            ("plan", "load", "x", "--version", "0", "--out", "{d}/x"),
            2,
            usage + r"--version: 0 is out of range",
        )
    )

    # -- the gate: every error has its own exit code; nothing NaN or edited slips through -----
    gate = ("gate", "{plan}", "--policy")
    add(Case("gate without --policy", ("gate", "{plan}"), 5, r"required: --policy"))
    add(Case("gate unknown flag", (*gate, "{policy}", "--bogus"), 5, r"unrecognized arguments"))
    add(
        Case(
            "gate missing plan",
            ("gate", "{d}/none.fplan", "--policy", "{policy}"),
            4,
            r"none.fplan: cannot read: no such plan file",
        )
    )
    add(
        Case(
            "gate plan is /dev/zero",
            ("gate", "/dev/zero", "--policy", "{policy}"),
            4,
            r"/dev/zero: is a character device, not a plan file",
        )
    )
    add(
        Case(
            "gate plan is a FIFO",
            ("gate", "{fifo}", "--policy", "{policy}"),
            4,
            r"is a FIFO \(named pipe\), not a plan file",
        )
    )
    add(
        Case(
            "gate corrupt plan",
            ("gate", "{d}/bad.fplan", "--policy", "{policy}"),
            4,
            r"bad.fplan: field 'line 1 column 1'.*not valid JSON",
            {"bad.fplan": b"PK\x03\x04"},
        )
    )
    add(
        Case(
            "gate plan unknown machine",
            ("gate", "{d}/p.fplan", "--policy", "{policy}"),
            4,
            r"unknown configuration 'mac-studio-m4-max-40c-128gbx'; did you mean",
            {"p.fplan": _plan_edit(lambda d: _machine(d).update(config_id=STUDIO + "x"))},
        )
    )
    for name, policy, msg in [
        ("nan max_usd", b"[budget]\nmax_usd = nan\n", r"'budget.max_usd' = nan: must be a finite"),
        ("inf max_watts", b"[power]\nmax_watts = inf\n", r"'power.max_watts' = inf: must be a fin"),
        ("nan escalate", b"[budget]\nmax_usd = 9\nescalate_usd = nan\n", r"escalate_usd' = nan"),
        ("nan headroom", b"[memory]\nmin_headroom_gib = nan\n", r"min_headroom_gib' = nan"),
        ("nan agreement", b"[agreement]\nmin_pct = nan\n", r"min_pct' = nan: must be a finite"),
        ("huge int", b"[budget]\nmax_usd = " + HUGE_DIGITS.encode() + b"\n", r"not a usable TOML"),
        ("400-digit int", b"[budget]\nmax_usd = " + b"9" * 400 + b"\n", r"must be a finite number"),
        ("deep nesting", DEEP_TOML, r"nested too deeply to be a policy"),
        ("binary", b"\xff\xfe\x00[", r"not UTF-8"),
        ("not TOML", b"[budget\nmax_usd = 1\n", r"not valid TOML"),
        ("empty", b"", r"no rule sections"),
        ("negative", b"[budget]\nmax_usd = -5\n", r"must be >= 0"),
        ("escalate above max", b"[budget]\nmax_usd = 5\nescalate_usd = 9\n", r"must not exceed"),
        ("unknown section", b"[budgets]\nmax_usd = 5\n", r"unknown section"),
        ("string number", b'[budget]\nmax_usd = "5"\n', r"must be a number"),
    ]:
        add(
            Case(
                f"gate policy {name}",
                (*gate, "{d}/p.toml"),
                3,
                r"malformed policy: .*" + msg,
                {"p.toml": policy},
            )
        )
    add(Case("gate policy /dev/zero", (*gate, "/dev/zero"), 3, r"is a character device"))
    add(Case("gate policy FIFO", (*gate, "{fifo}"), 3, r"is a FIFO"))
    add(Case("gate policy directory", (*gate, "{d}"), 3, r"is a directory"))
    add(
        Case(
            "gate policy 2 MiB",
            (*gate, "{d}/p.toml"),
            3,
            r"larger than any policy file",
            {"p.toml": b"#" * (2 << 20)},
        )
    )
    add(
        Case(
            "gate NaN price in plan",
            ("gate", "{d}/p.fplan", "--policy", "{policy}"),
            4,
            r"'NaN': NaN is not a JSON number",
            {"p.fplan": _text_edit('"usd": 3200.0', '"usd": NaN')},
        )
    )
    add(
        Case(
            "gate edited price and power",
            ("gate", "{d}/p.fplan", "--policy", "{d}/b.toml"),
            1,
            None,
            {
                "p.fplan": _plan_edit(
                    lambda d: (_machine(d)["price"].update(usd=1.0), _machine(d).update(max_w=0.0))
                ),
                "b.toml": b"[budget]\nmax_usd = 100\n",
            },
        )
    )
    add(
        Case(
            "gate negative watts in plan",
            ("gate", "{d}/p.fplan", "--policy", "{policy}"),
            4,
            r"max power \(W\) must be 0..1e\+07, got -1000",
            {"p.fplan": _plan_edit(lambda d: _machine(d).update(max_w=-1000.0))},
        )
    )

    # -- plan files: every way to break one, given to `plan show` ------------------------------
    show = ("plan", "show", "{d}/p.fplan")
    for name, make, msg in [
        ("empty file", b"", r"'line 1 column 1'.*not valid JSON: Expecting value"),
        ("not JSON", b"hello", r"not valid JSON"),
        ("binary", b"\x00\xff\xfe", r"field 'byte 1' = b'\\xff': not UTF-8"),
        ("top-level array", b"[]", r"a plan must be a JSON object"),
        (
            "huge integer",
            _text_edit('"count": 1', f'"count": {HUGE_DIGITS}'),
            r"an integer with more than 30 digits",
        ),
        ("int past 2^53", _text_edit('"count": 1', '"count": 9007199254740993'), r"integer beyond"),
        (
            "count 10^20",
            _text_edit('"count": 1', '"count": 100000000000000000000'),
            r"integer beyond|machine count must be 1..1000",
        ),
        ("count 5000", _text_edit('"count": 1', '"count": 5000'), r"machine count must be 1..1000"),
        ("count 0", _text_edit('"count": 1', '"count": 0'), r"machine count must be 1..1000"),
        (
            "deep nesting",
            _text_edit('"notes": "', '"deep": ' + "[" * DEEP + "]" * DEEP + ', "notes": "'),
            r"nested deeper than 64",
        ),
        (
            "duplicate key",
            _text_edit('"count": 1,', '"count": 1, "count": 2,'),
            r"duplicate key 'count'",
        ),
        ("NaN price", _text_edit('"usd": 3200.0', '"usd": NaN'), r"NaN is not a JSON number"),
        ("Infinity", _text_edit('"usd": 3200.0', '"usd": Infinity'), r"Infinity is not a JSON"),
        ("1e400", _text_edit('"usd": 3200.0', '"usd": 1e400'), r"too large for a 64-bit float"),
        ("negative price", _text_edit('"usd": 3200.0', '"usd": -1'), r"price \(USD\) must be 0.."),
        (
            "negative watts",
            _plan_edit(lambda d: _machine(d).update(max_w=-1000.0)),
            r"max power \(W\) must be",
        ),
        (
            "unknown runtime",
            _text_edit('"runtime": "llama.cpp"', '"runtime": "vllm"'),
            r"runtime 'vllm' unknown; valid: llama.cpp, mlx, ollama",
        ),
        (
            "context 10^12",
            _text_edit('"context": 16384', '"context": 1000000000000'),
            r"context must be 1..16777216 tokens",
        ),
        (
            "newer schema",
            _text_edit('"schema_version": 2', '"schema_version": 99'),
            r"written by a newer ForgePlanner",
        ),
        ("bad basis", _text_edit('"basis": "observed"', '"basis": "free"'), r"price basis 'free'"),
        (
            "bad as_of",
            _text_edit('"as_of": "2026-06-19"', '"as_of": "tomorrow"'),
            r"date 'tomorrow' is not YYYY-MM-DD",
        ),
        ("price as text", _text_edit('"usd": 3200.0', '"usd": "1.2.3"'), r"expected a number"),
        ("trailing garbage", lambda t: t.encode() + b"}", r"not valid JSON: Extra data"),
        (
            "unknown field",
            _text_edit('"count": 1,', '"cuont": 1, "count": 1,'),
            r"unknown field \(typo or newer file\?\)",
        ),
        (
            "bad currency",
            _plan_edit(_set(("plan", "power", "currency"), "dollars")),
            r"currency must be a 3-letter code",
        ),
    ]:
        add(Case(f"plan file {name}", show, 2, msg, {"p.fplan": make}))
    add(
        Case(
            "plan file with BOM reads",
            show,
            0,
            None,
            {"p.fplan": lambda t: b"\xef\xbb\xbf" + t.encode()},
        )
    )
    add(Case("plan file /dev/zero", ("plan", "show", "/dev/zero"), 2, r"is a character device"))
    add(Case("plan file FIFO", ("plan", "show", "{fifo}"), 2, r"is a FIFO"))
    add(Case("plan file directory", ("plan", "show", "{d}"), 2, r"is a directory, not a plan"))
    add(Case("plan file 100 MiB", show, 2, r"larger than any plan file", {"p.fplan": 100 << 20}))
    add(
        Case(
            "add-model to /dev/zero",
            ("plan", "add-model", "/dev/zero", "llama-3.1-8b", "--quant", "Q4_K_M", "--no-db"),
            2,
            r"/dev/zero: is a character device; ForgePlanner writes regular files",
        )
    )

    # -- outputs that are not regular files are refused, never replaced ------------------------
    for out, msg in [
        ("/dev/null", r"/dev/null: is a character device; ForgePlanner writes regular files"),
        ("{fifo}", r"is a FIFO \(named pipe\); ForgePlanner writes regular files"),
        ("{d}", r"is a directory; give a file name"),
        ("{d}/missing/x.md", r"directory '.*missing' does not exist"),
    ]:
        for fmt in ("md", "json", "xlsx"):
            add(
                Case(
                    f"export {fmt} --out {out[-10:]}",
                    ("export", "{plan}", "--format", fmt, "--out", out, "--no-db"),
                    2,
                    msg,
                )
            )
    add(
        Case(
            "plan new --out /dev/null",
            ("plan", "new", "x", "--out", "/dev/null", "--force", "--no-db"),
            2,
            r"/dev/null: is a character device; ForgePlanner writes regular files",
        )
    )

    # -- evidence records --------------------------------------------------------------------
    ev = ("evidence", "verify", "{d}/e.json")
    for name, data, code, msg in [
        ("duplicate key", b'{"format": 1, "format": 2}', 1, r"duplicate key 'format'"),
        (
            "huge integer",
            b'{"record_version": ' + HUGE_DIGITS.encode() + b"}",
            1,
            r"integer with more than 30 digits",
        ),
        ("deep nesting", DEEP_JSON, 1, r"nested deeper than 64"),
        ("NaN", b'{"a": NaN}', 1, r"NaN is not a JSON number"),
        ("not JSON", b"{", 1, r"not valid JSON"),
        ("binary", b"\xff", 1, r"not UTF-8"),
    ]:
        add(Case(f"evidence {name}", ev, code, msg, {"e.json": data}))
    add(Case("evidence /dev/zero", ("evidence", "verify", "/dev/zero"), 2, r"character device"))
    add(Case("evidence FIFO", ("evidence", "verify", "{fifo}"), 2, r"is a FIFO"))
    add(
        Case(
            "evidence bad signer",
            (*ev, "--signer", "ssh-ed25519 AAAAnope"),
            2,
            r"signer 'ssh-ed25519 AAAAnope': not a public key",
            {"e.json": b"{}"},
        )
    )
    add(
        Case(
            "evidence sign with no key",
            ("evidence", "sign", "{d}/e.json", "--key", "{d}/nokey"),
            2,
            r"nokey: cannot read: no such private key file",
            {"e.json": b"{}"},
        )
    )
    add(
        Case(
            "evidence sign garbage key",
            ("evidence", "sign", "{d}/e.json", "--key", "{d}/k"),
            2,
            r"k: not a usable private key",
            {"e.json": b"{}", "k": b"-----BEGIN nope"},
        )
    )

    # -- model imports -----------------------------------------------------------------------
    imp = ("models", "import")
    for name, data, msg in [
        ("config huge int", BIG_INT_JSON, r"integer with more than 30 digits"),
        ("config deep", b'{"model_type": ' + b"[" * DEEP + b"]" * DEEP + b"}", r"nested deeper"),
        (
            "config duplicate key",
            b'{"model_type": "llama", "model_type": "qwen2"}',
            r"duplicate key 'model_type'",
        ),
        ("config NaN", b'{"model_type": "llama", "hidden_size": NaN}', r"NaN is not a JSON"),
        ("config 1e400", b'{"model_type": "llama", "hidden_size": 1e400}', r"too large"),
        (
            "config negative layers",
            CONFIG_OK.replace(b'"num_hidden_layers": 16', b'"num_hidden_layers": -16'),
            r"num_hidden_layers",
        ),
        (
            "ollama huge int",
            b'{"model_info": {"general.architecture": "llama", "llama.block_count"'
            b": " + HUGE_DIGITS.encode() + b"}}",
            r"integer with more than 30 digits",
        ),
        ("ollama deep", b'{"model_info": ' + b"[" * DEEP + b"]" * DEEP + b"}", r"nested deeper"),
        ("neither", b'{"hello": 1}', r"neither a config.json"),
        ("gguf bad magic", b"GGUX" + b"\x00" * 64, r"neither GGUF nor JSON|not valid JSON"),
    ]:
        add(Case(f"models import {name}", (*imp, "{d}/m.json"), 2, msg, {"m.json": data}))
    add(
        Case(
            "models import config BOM",
            (*imp, "{d}/config.json", "--no-save"),
            0,
            None,
            {"config.json": b"\xef\xbb\xbf" + CONFIG_OK},
        )
    )
    add(Case("models import /dev/zero", (*imp, "/dev/zero"), 2, r"is a character device"))
    add(Case("models import FIFO", (*imp, "{fifo}"), 2, r"is a FIFO"))
    add(Case("models import empty dir", (*imp, "{d}/empty"), 2, r"directory without a config"))
    add(
        Case(
            "models import truncated gguf",
            (*imp, "{d}/m.gguf"),
            2,
            r"m.gguf: field",
            {"m.gguf": b"GGUF\x03\x00\x00\x00"},
        )
    )
    add(
        Case(
            "estimate --gguf /dev/zero",
            ("estimate", "--gguf", "/dev/zero", "--machine", MINI),
            2,
            r"is a character device, not a GGUF file",
        )
    )
    add(
        Case(
            "estimate --gguf FIFO",
            ("estimate", "--gguf", "{fifo}", "--machine", MINI),
            2,
            r"is a FIFO",
        )
    )
    add(
        Case(
            "models show typo",
            ("models", "show", "qwen3-8"),
            2,
            r"unknown model 'qwen3-8'; did you mean qwen3-8b",
        )
    )
    add(
        Case(
            "catalog show typo",
            ("catalog", "show", "mac-mini-m4-pro-20c-64"),
            2,
            r"did you mean mac-mini-m4-pro-20c-64gb",
        )
    )

    # -- price CSVs ----------------------------------------------------------------------------
    pi = ("prices", "import", "{d}/p.csv", "--preview")
    multi = (
        CSV_HEAD + '"Mac mini M4 Pro 20-core GPU 64GB\nline two\nline three",1899,USD,'
        "2026-01-10,used,ebay\n" + CSV_ROW.replace("1899", '"1.2.3,4"')
    )
    for name, text, msg in [
        ("empty file", "", r"empty file: no header and no rows"),
        ("header only", CSV_HEAD, r"no data rows"),
        ("NaN date", CSV_HEAD + CSV_ROW.replace("2026-01-10", "NaN"), r"line 2: 'NaN' is not a"),
        (
            "bad amount",
            CSV_HEAD + CSV_ROW.replace("1899", '"1.2.3,4"'),
            r"line 2: '1.2.3,4' is not an amount",
        ),
        ("line after multi-line cell", multi, r"line 5: '1.2.3,4' is not an amount"),
        ("future date", CSV_HEAD + CSV_ROW.replace("2026-01-10", "2999-01-01"), r"in the future"),
        ("field count", CSV_HEAD + "a,b\n", r"line 2.*expected 6 fields"),
        (
            "duplicate column",
            "price,price,date,condition,title\n1,2,2026-01-01,used,x\n",
            r"column name appears twice",
        ),
        ("no price column", "title,date\nx,2026-01-01\n", r"missing price"),
        ("price 1e400", CSV_HEAD + CSV_ROW.replace("1899", "1e400"), r"is not an amount"),
        ("unterminated quote", CSV_HEAD + '"abc,1899', r"not a readable CSV|expected 6 fields"),
    ]:
        add(Case(f"prices csv {name}", pi, 2, msg, {"p.csv": text.encode()}))
    add(
        Case(
            "prices csv NUL byte in a title",
            pi,
            0,
            None,
            {"p.csv": (CSV_HEAD + "\x00" + CSV_ROW).encode()},
        )
    )
    add(Case("prices csv binary", pi, 2, r"not UTF-8 text", {"p.csv": b"\xff\xfe\x00\x01"}))
    add(Case("prices csv /dev/zero", ("prices", "import", "/dev/zero"), 2, r"character device"))
    add(Case("prices csv FIFO", ("prices", "import", "{fifo}"), 2, r"is a FIFO"))
    add(
        Case(
            "prices delete unknown",
            ("prices", "delete", "user-999"),
            2,
            r"unknown price observation '999'",
        )
    )
    add(
        Case(
            "prices delete shipped",
            ("prices", "delete", "obs-2024-xyz"),
            2,
            r"'obs-2024-xyz' is not one of your observations' ids",
        )
    )

    # -- the user database ------------------------------------------------------------------
    add(
        Case(
            "database is a 0-byte file",
            ("plan", "list"),
            2,
            r"is an empty \(0-byte\) file, not a ForgePlanner database",
            {"db.sqlite": b""},
            {"FORGEPLANNER_DB": "sqlite:///{d}/db.sqlite"},
        )
    )
    add(
        Case(
            "database is garbage",
            ("plan", "list"),
            2,
            r"cannot open database",
            {"db.sqlite": b"not a database" * 100},
            {"FORGEPLANNER_DB": "sqlite:///{d}/db.sqlite"},
        )
    )
    add(
        Case(
            "database is a directory",
            ("plan", "list"),
            2,
            r"not a regular file",
            {},
            {"FORGEPLANNER_DB": "sqlite:///{d}"},
        )
    )
    add(
        Case(
            "FORGEPLANNER_HOME is a file",
            ("plan", "list"),
            2,
            r"cannot use the folder .*afile/data \(FORGEPLANNER_HOME\): Not a directory",
            {"afile": b""},
            {"FORGEPLANNER_HOME": "{d}/afile"},
        )
    )

    # -- a few more ids and addresses ---------------------------------------------------------
    add(
        Case(
            "attach-run 10^23",
            ("plan", "attach-run", "{plan}", "99999999999999999999999", "--no-db"),
            2,
            r"run id '9+' is not a run number",
        )
    )
    add(
        Case(
            "cluster --address 999.1.1.1",
            (*clu, "--node", f"{MINI}x2", "--address", "mini-1=999.1.1.1"),
            2,
            r"--address 'mini-1=999.1.1.1': expected NAME=IPv4",
        )
    )
    return c


CASES: list[Case] = _cases()
