"""``python -m bot run | chat | classify | scan | kb check | eval | bench`` (architecture.md).

Operator-facing errors (bad settings, invalid knowledge base) print one line to stderr and
exit non-zero; they are not tracebacks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.settings import Settings, SettingsError, load_settings
from knowledge import external


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


# -- offline commands (no Redis needed) ---------------------------------------------------
def cmd_kb_check(args: argparse.Namespace) -> int:
    from knowledge.loader import problems, read

    kb, found = read()
    brief = Path(args.brief or external.brief_path())
    if not brief.exists() and (args.brief or external.required()):
        found.append(f"knowledge brief not found at {brief}" + ("" if args.brief else
                     " (required in CI; set FANZHA_SHARED_DIR or put shared/ beside the repository)"))
    if kb is not None:
        found += problems(kb, brief.read_text(encoding="utf-8") if brief.exists() else None)
    if kb is not None and not found:  # the data is sound: now read every message as a user would
        from bot.kb_audit import rendering_problems

        found += rendering_problems(kb)
    if found:
        for p in found:
            print(f"✗ {p}")
        print(f"{len(found)} problem(s)")
        return 1
    assert kb is not None
    print(f"ok: {len(kb.laws)} laws, {len(kb.hotlines)} hotlines, {len(kb.procedures)} procedures, "
          f"{len(kb.patterns)} patterns, {len(kb.scenarios)} scenarios, "
          f"{sum(len(v) for v in kb.examples.values())} examples"
          + ("" if brief.exists() else f" (brief not found at {brief}: texts not compared)"))
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from bot.privacy import redact
    from knowledge.loader import load
    from knowledge.matcher import Matcher

    matcher = Matcher.from_kb(load())
    for line in sys.stdin:
        text = line.rstrip("\r\n")
        result = matcher.classify(redact(text).text)
        print(json.dumps({"text": text, "scenario": result.scenario,
                          "confidence": round(result.confidence, 4)}, ensure_ascii=False), flush=True)
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    from knowledge.loader import load
    from knowledge.scanner import Scanner

    scanner = Scanner.from_kb(load())
    for line in sys.stdin:
        text = line.rstrip("\r\n")
        result = scanner.scan(text)
        print(json.dumps({"text": text, "alert": result.alert, "pattern": result.pattern},
                         ensure_ascii=False), flush=True)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from knowledge.evaluate import (
        evaluate_group,
        evaluate_intents,
        format_group_report,
        format_intent_report,
    )
    from knowledge.loader import load
    from knowledge.matcher import Matcher
    from knowledge.scanner import Scanner

    if args.conversations:
        from bot.conversations import evaluate_files

        for path in args.conversations:
            if not Path(path).exists():
                return _fail(f"{path} not found")
        asyncio.run(evaluate_files(args.conversations, args.redis_url, show_failures=not args.quiet))
        return 0
    kb = load()
    intents = Path(args.intents or _default_eval("dev_intents.jsonl", "heldout_intents.jsonl"))
    group = Path(args.group or _default_eval("dev_group.jsonl", "heldout_group.jsonl"))
    for path in (intents, group):
        if not path.exists():
            return _fail(f"{path} not found")
    print(format_intent_report(evaluate_intents(Matcher.from_kb(kb), intents)))
    print()
    print(format_group_report(evaluate_group(Scanner.from_kb(kb), group)))
    return 0


def _default_eval(shared_name: str, own_name: str) -> Path:
    """The shared dev set when it is there (it must be, in CI), else the project's held-out set."""
    shared = external.shared_eval(shared_name)
    if shared.exists() or external.required():
        return shared
    print(f"({shared} not found: using the project's own {own_name})", file=sys.stderr)
    return external.OWN_EVAL / own_name


# -- commands that run the bot ------------------------------------------------------------
async def _chat(settings: Settings) -> int:
    from bot.channels.console import run_console
    from bot.runtime import Runtime

    runtime = Runtime(settings)
    pipeline = await runtime.start()
    try:
        await run_console(pipeline, sys.stdin, sys.stdout)
    finally:
        await runtime.close()
    return 0


async def _run(settings: Settings) -> int:
    from bot.server import serve

    return await serve(settings)


def cmd_bench(args: argparse.Namespace) -> int:
    if args.mp:
        from bot.bench_mp import main as bench_mp_main

        return bench_mp_main(["--users", str(args.users), "--messages", str(args.messages),
                              *(["--json"] if args.json else [])])
    from bot.bench import main as bench_main

    return bench_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="反诈助手 — anti-fraud helper bot")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start the HTTP server (web chat + API) and configured channels")
    sub.add_parser("chat", help="talk to the bot in this terminal")
    sub.add_parser("classify", help="stdin: one user message per line → JSON lines with the scenario")
    sub.add_parser("scan", help="stdin: one group message per line → JSON lines with alert/pattern")
    kb = sub.add_parser("kb", help="knowledge base tools")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    check = kb_sub.add_parser("check", help="validate the knowledge base; non-zero exit on any problem")
    check.add_argument("--brief", default=None,
                       help="knowledge brief to compare law texts and numbers against "
                            "(default ../shared/knowledge-brief.md or $FANZHA_SHARED_DIR; required in CI)")
    ev = sub.add_parser("eval", help="accuracy + confusion table; group-scan precision/recall")
    ev.add_argument("intents", nargs="?", default=None,
                    help="labelled JSONL (default ../shared/eval/dev_intents.jsonl, else tests/data/heldout_intents.jsonl)")
    ev.add_argument("--group", default=None,
                    help="labelled group JSONL (default ../shared/eval/dev_group.jsonl, else tests/data/heldout_group.jsonl)")
    ev.add_argument("--conversations", nargs="+", metavar="FILE",
                    help="multi-turn conversation JSONL: turn and conversation pass rates")
    ev.add_argument("--redis-url", default=None, help="with --conversations: a Redis to use "
                    "instead of an embedded Valkey (the run writes only its own keys)")
    ev.add_argument("--quiet", action="store_true", help="with --conversations: figures only")
    bench = sub.add_parser("bench", help="throughput/latency of the whole pipeline (prints figures)")
    bench.add_argument("--users", type=int, default=100)
    bench.add_argument("--messages", type=int, default=40)
    bench.add_argument("--http", action="store_true", help="drive the load through the HTTP API")
    bench.add_argument("--json", action="store_true", help="print one JSON line")
    bench.add_argument("--processes", type=int, default=1, help="bot processes sharing one Redis")
    bench.add_argument("--peer", action="store_true", help="also run the aiogram peer, A B A B")
    bench.add_argument("--mp", action="store_true",
                       help="the 公众号 passive reply under load over HTTP (p99 against WeChat's 5 s)")
    bench.add_argument("--waves", type=int, default=1,
                       help="repeat with new users N times, printing memory after each wave")
    bench.add_argument("--classify-seconds", type=float, default=1.0,
                       help="how long to time classification alone")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    offline = {"classify": cmd_classify, "scan": cmd_scan, "eval": cmd_eval, "bench": cmd_bench}
    try:
        if args.command == "kb":
            return cmd_kb_check(args)
        if args.command in offline:
            return offline[args.command](args)
        settings = load_settings()
        from bot.logs import setup_logging

        if args.command == "chat":  # the terminal is the conversation: only problems go to stderr
            setup_logging("WARNING" if settings.log_level in ("DEBUG", "INFO") else settings.log_level,
                          settings.log_json)
            return asyncio.run(_chat(settings))
        setup_logging(settings.log_level, settings.log_json)
        coro = _run(settings)
        return asyncio.run(coro)
    except SettingsError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line for operators; the knowledge error lists its problems
        from knowledge.loader import KnowledgeError

        if isinstance(exc, KnowledgeError):
            return _fail(str(exc))
        raise

