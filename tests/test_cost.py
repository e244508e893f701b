"""Price table, model-name matching and cost arithmetic (nemoflow._cost)."""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import re
from importlib.resources import files
from typing import Any

import pytest

from nemoflow._cost import Cost, ModelPrice, PriceTable, compute_cost
from nemoflow._model import Usage


def _bundled_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(files("nemoflow").joinpath("data", "prices.json").read_text("utf-8"))
    return data


def _key(model: str, provider: str | None = None, table: PriceTable | None = None) -> str | None:
    found = (table or PriceTable.default()).lookup(model, provider)
    return None if found is None else found[0]


# ----------------------------------------------------------------------------------------- the table


def test_bundled_table_is_dated_and_documented() -> None:
    data = _bundled_json()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", data["version"])
    datetime.date.fromisoformat(data["version"])
    assert data["currency"] == "USD"
    assert data["unit"] == "per_million_tokens"
    for host in ("developers.openai.com", "platform.claude.com", "ai.google.dev"):
        assert host in data["source"]
    table = PriceTable.default()
    assert table.version == data["version"]
    assert table.currency == "USD"
    assert table.source == data["source"]
    assert len(table.models) == len(data["models"]) >= 30


def test_every_bundled_entry_is_sane() -> None:
    table = PriceTable.default()
    seen_aliases: set[str] = set()
    for key, entry in _bundled_json()["models"].items():
        assert key == key.strip().lower(), key
        assert entry["provider"] in {"openai", "anthropic", "google"}, key
        price = table.models[key]
        assert price.input is not None and price.input > 0, key
        assert price.output is None or price.output >= price.input, key
        if price.cache_read is not None:
            assert 0 <= price.cache_read <= price.input, key
        if price.cache_write is not None:
            assert price.cache_write >= price.input, key  # writing to a cache never costs less than input
        assert price.reasoning is None or price.reasoning >= 0, key
        for name in price.input, price.output, price.cache_read, price.cache_write, price.reasoning:
            assert name is None or math.isfinite(name), key
        assert _key(key) == key, key
        for alias in entry["aliases"]:
            assert alias not in seen_aliases and alias not in table.models, alias
            seen_aliases.add(alias)
            assert _key(alias) == key, alias


def test_embedding_models_bill_no_output() -> None:
    table = PriceTable.default()
    for name in ("text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"):
        assert table.models[name].output is None


def test_default_table_is_loaded_once() -> None:
    assert PriceTable.default() is PriceTable.default()


# ----------------------------------------------------------------------------------------- lookup


@pytest.mark.parametrize(
    ("model", "key"),
    [
        # exact and case-insensitive
        ("gpt-4o", "gpt-4o"),
        ("GPT-4o", "gpt-4o"),
        ("  gpt-4.1  ", "gpt-4.1"),
        ("Claude-Sonnet-4-5", "claude-sonnet-4-5"),
        # provider prefixes and paths (OpenRouter, LiteLLM, Vertex, Gemini API)
        ("openai/gpt-4o", "gpt-4o"),
        ("openai/gpt-4o-mini", "gpt-4o-mini"),
        ("anthropic/claude-sonnet-4", "claude-sonnet-4"),
        ("anthropic/claude-3.5-sonnet", "claude-3-5-sonnet"),
        ("anthropic/claude-opus-4.1", "claude-opus-4-1"),
        ("anthropic/claude-haiku-4.5", "claude-haiku-4-5"),
        ("google/gemini-2.5-flash", "gemini-2.5-flash"),
        ("openai/o4-mini-high", "o4-mini"),
        ("models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("publishers/google/models/gemini-2.5-pro", "gemini-2.5-pro"),
        (
            "projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash-lite",
            "gemini-2.5-flash-lite",
        ),
        # Bedrock ids, with and without cross-region prefix, and inference-profile ARNs
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", "claude-3-5-sonnet"),
        ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet"),
        ("eu.anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku"),
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-opus-4-1-20250805-v1:0",
            "claude-opus-4-1",
        ),
        # Vertex Claude ids
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"),
        ("claude-sonnet-4@20250514", "claude-sonnet-4"),
        ("claude-opus-4-1@20250805", "claude-opus-4-1"),
        # dated snapshots and versions
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-11-20", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("o1-2024-12-17", "o1"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("gpt-5-mini-2025-08-07", "gpt-5-mini"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-opus-4-20250514", "claude-opus-4"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-3-7-sonnet-20250219", "claude-3-7-sonnet"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("gemini-2.0-flash-lite-001", "gemini-2.0-flash-lite"),
        # aliases
        ("claude-sonnet-4-0", "claude-sonnet-4"),
        ("claude-opus-4-0", "claude-opus-4"),
        # a snapshot with a price of its own beats its family
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),
    ],
)
def test_lookup_matches(model: str, key: str) -> None:
    assert _key(model) == key


def test_gpt_4o_mini_never_gets_gpt_4o_price() -> None:
    table = PriceTable.default()
    for name in ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "openai/gpt-4o-mini", "GPT-4O-MINI"):
        found = table.lookup(name)
        assert found is not None
        assert found == ("gpt-4o-mini", table.models["gpt-4o-mini"])
        assert found[1] != table.models["gpt-4o"]


def test_no_key_is_taken_for_a_shorter_key() -> None:
    # For every pair like gpt-4.1 / gpt-4.1-mini or claude-opus-4 / claude-opus-4-1, the longer name wins.
    keys = list(PriceTable.default().models)
    pairs = [(short, long) for short in keys for long in keys if long.startswith(short + "-")]
    assert pairs  # the table does contain such pairs
    for _, long in pairs:
        assert _key(long) == long
        assert _key(long + "-2025-01-01") == long


@pytest.mark.parametrize(
    "model",
    [
        None,
        "",
        "   ",
        "llama-3.1-70b",
        "gpt-4",  # a key only as a prefix of others
        "gpt-4o-mini-transcribe",  # a different product, priced otherwise
        "gpt-4o-realtime-preview",
        "gpt-5-pro",
        "o3-pro",
        "o1-mini",
        "claude-opus-4-9",  # a minor version the table does not know: not Opus 4's price
        "claude-sonnet-4-7",
        "gemini-2.5-flash-preview-05-20",
        "gemini-2.5-pro-exp-03-25",
        "ft:gpt-4o-2024-08-06:acme::abc123",  # fine-tuned models are priced apart
        "anthropic/claude-3.7-sonnet:thinking",
    ],
)
def test_unknown_models_match_nothing(model: str | None) -> None:
    assert PriceTable.default().lookup(model) is None


def test_provider_scoped_entries() -> None:
    table = PriceTable.default().with_overrides({"azure/gpt-4o": ModelPrice(input=2.75, output=11.0)})
    assert _key("gpt-4o", "azure", table) == "azure/gpt-4o"
    assert _key("gpt-4o-2024-08-06", "Azure", table) == "azure/gpt-4o"
    assert _key("azure/gpt-4o", None, table) == "azure/gpt-4o"
    assert _key("gpt-4o", None, table) == "gpt-4o"
    assert _key("gpt-4o", "openai", table) == "gpt-4o"
    assert _key("gpt-4o-mini", "azure", table) == "gpt-4o-mini"  # falls back to the unscoped entry
    partial = PriceTable.default().with_overrides({"bedrock/claude-sonnet-4-5": {"input": 3.3}})
    assert partial.lookup("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock") == (
        "bedrock/claude-sonnet-4-5",
        ModelPrice(3.3, 15.0, cache_read=0.3, cache_write=3.75),
    )
    cost = compute_cost(
        Usage(prompt_tokens=1000, completion_tokens=0), "gpt-4o", provider="azure", table=table
    )
    assert cost is not None and cost.source == "override" and cost.total == 0.00275


# ----------------------------------------------------------------------------------------- building tables


def test_model_price_validation() -> None:
    price = ModelPrice(input=1, output=2)
    assert isinstance(price.input, float) and price.input == 1.0
    assert price.cache_read is None and price.reasoning is None
    with pytest.raises(ValueError):
        ModelPrice(input=-1.0, output=1.0)
    with pytest.raises(ValueError):
        ModelPrice(input=math.nan, output=1.0)
    with pytest.raises(TypeError):
        ModelPrice(input=True, output=1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        price.input = 3.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"models": []},
        {"unit": "per_token", "models": {}},
        {"currency": "", "models": {}},
        {"version": 20261101, "models": {}},
        {"models": {"m": {"output": 1.0}}},
        {"models": {"m": {"input": -0.5}}},
        {"models": {"m": {"input": "1.0"}}},
        {"models": {"m": {"input": True}}},
        {"models": {"m": {"input": 1.0, "ouput": 2.0}}},
        {"models": {"m": {"input": 1.0, "aliases": "x"}}},
        {"models": {"m": {"input": 1.0, "aliases": ["x"]}, "n": {"input": 2.0, "aliases": ["x"]}}},
        {"models": {"m": {"input": 1.0}, "M": {"input": 2.0}}},
    ],
)
def test_from_mapping_refuses_bad_tables(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        PriceTable.from_mapping(data)


def test_from_mapping_builds_a_table() -> None:
    table = PriceTable.from_mapping(
        {
            "version": "2030-01-01",
            "currency": "EUR",
            "notes": ["ignored"],
            "models": {"Acme-1": {"input": 1, "output": 2, "cache_read": 0.5, "aliases": ["acme-one"]}},
        }
    )
    assert table.version == "2030-01-01"
    assert table.currency == "EUR"
    assert table.source is None
    assert table.lookup("acme-one") == ("acme-1", ModelPrice(1.0, 2.0, cache_read=0.5))
    assert table.lookup("acme-1-20300101") is not None
    cost = compute_cost(Usage(prompt_tokens=1000, completion_tokens=1000), "acme-1", table=table)
    assert cost is not None and cost.currency == "EUR"


def test_with_overrides() -> None:
    base = PriceTable.default()
    table = base.with_overrides(
        {
            "gpt-4o": {"input": 2.0},
            "GPT-4.1": ModelPrice(input=1.0, output=4.0),
            "acme-large": {"input": 3.0, "output": 9.0},
            "claude-sonnet-4-0": {"output": 12.0},
        }
    )
    assert table.models["gpt-4o"] == ModelPrice(2.0, 10.0, cache_read=1.25)  # only input changed
    assert table.models["gpt-4.1"] == ModelPrice(1.0, 4.0)  # replaced whole: no cache price left
    assert table.lookup("acme-large-2031-02-03") == ("acme-large", ModelPrice(3.0, 9.0))
    # an override of an alias starts from the aliased entry and shadows the alias only
    assert table.lookup("claude-sonnet-4-0") == ("claude-sonnet-4-0", ModelPrice(3.0, 12.0, 0.3, 3.75))
    assert _key("claude-sonnet-4-20250514", table=table) == "claude-sonnet-4"
    assert table.is_override("gpt-4o") and table.is_override("acme-large")
    assert not table.is_override("gpt-4o-mini")
    assert table.version == base.version
    # the original is untouched
    assert base.models["gpt-4o"].input == 2.5
    assert not base.is_override("gpt-4o")
    assert base.lookup("acme-large") is None
    # overrides stack
    again = table.with_overrides({"gpt-4o-mini": {"output": 0.5}})
    assert again.is_override("gpt-4o") and again.is_override("gpt-4o-mini")


def test_with_overrides_refuses_bad_input() -> None:
    table = PriceTable.default()
    with pytest.raises(ValueError):
        table.with_overrides({"gpt-4o": {"inptu": 1.0}})
    with pytest.raises(ValueError):
        table.with_overrides({"brand-new": {"output": 1.0}})
    with pytest.raises(ValueError):
        table.with_overrides({"gpt-4o": {"input": -1.0}})
    with pytest.raises(ValueError):
        table.with_overrides({" ": {"input": 1.0}})


# ----------------------------------------------------------------------------------------- cost


def test_openai_with_cached_tokens() -> None:
    usage = Usage(prompt_tokens=2000, completion_tokens=300, total_tokens=2300, cache_read_tokens=1500)
    cost = compute_cost(usage, "gpt-4o-2024-08-06", provider="openai")
    assert cost == Cost(
        0.006125,
        0.00125,  # 500 fresh x $2.50
        0.003,  # 300 x $10
        0.001875,  # 1500 cached x $1.25
        None,  # no cache writes reported
        currency="USD",
        source="price_table",
        table_version="2026-11-01",
        model_key="gpt-4o",
    )


def test_openai_reasoning_model() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=5000, cache_read_tokens=0, reasoning_tokens=4000)
    cost = compute_cost(usage, "o4-mini-2025-04-16")
    assert cost is not None
    assert (cost.total, cost.input, cost.output, cost.cache_read) == (0.0231, 0.0011, 0.022, 0.0)


def test_anthropic_with_cache_write_and_read() -> None:
    # prompt_tokens counts fresh (100), written (2000) and read (10000) tokens alike
    usage = Usage(
        prompt_tokens=12100, completion_tokens=500, cache_read_tokens=10000, cache_write_tokens=2000
    )
    cost = compute_cost(usage, "claude-sonnet-4-5-20250929", provider="anthropic")
    assert cost is not None
    assert cost.model_key == "claude-sonnet-4-5"
    assert cost.input == 0.0003  # 100 x $3
    assert cost.cache_write == 0.0075  # 2000 x $3.75
    assert cost.cache_read == 0.003  # 10000 x $0.30
    assert cost.output == 0.0075  # 500 x $15
    assert cost.total == 0.0183


def test_anthropic_on_bedrock() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=100, cache_read_tokens=0, cache_write_tokens=0)
    cost = compute_cost(usage, "us.anthropic.claude-3-haiku-20240307-v1:0", provider="bedrock")
    assert cost is not None
    assert (cost.total, cost.input, cost.output, cost.cache_read, cost.cache_write) == (
        0.000375,
        0.00025,
        0.000125,
        0.0,
        0.0,
    )


def test_gemini_with_thinking_tokens() -> None:
    # Gemini bills thoughts as output: 2500 completion tokens, 2000 of them thinking
    usage = Usage(prompt_tokens=10000, completion_tokens=2500, cache_read_tokens=4000, reasoning_tokens=2000)
    cost = compute_cost(usage, "models/gemini-2.5-flash", provider="gemini")
    assert cost is not None
    assert cost.model_key == "gemini-2.5-flash"
    assert cost.input == 0.0018  # 6000 x $0.30
    assert cost.cache_read == 0.00012  # 4000 x $0.03
    assert cost.output == 0.00625  # 2500 x $2.50
    assert cost.total == 0.00817


def test_reasoning_price_applies_to_reasoning_tokens_only() -> None:
    table = PriceTable.default().with_overrides({"gemini-2.5-flash": {"reasoning": 3.5}})
    usage = Usage(prompt_tokens=10000, completion_tokens=2500, cache_read_tokens=4000, reasoning_tokens=2000)
    cost = compute_cost(usage, "gemini-2.5-flash", table=table)
    assert cost is not None
    assert cost.output == 0.00825  # 500 x $2.50 + 2000 x $3.50
    assert cost.total == 0.01017
    assert cost.source == "override"


def test_embeddings_have_no_output() -> None:
    cost = compute_cost(Usage(prompt_tokens=1000, total_tokens=1000), "text-embedding-3-large")
    assert cost is not None
    assert (cost.total, cost.input, cost.output, cost.cache_read, cost.cache_write) == (
        0.00013,
        0.00013,
        None,
        None,
        None,
    )
    only_prompt = compute_cost(Usage(prompt_tokens=50000), "text-embedding-3-small")
    assert only_prompt is not None and only_prompt.total == 0.001 and only_prompt.output is None
    # an embedding model reporting output tokens cannot be priced
    assert compute_cost(Usage(prompt_tokens=10, completion_tokens=5), "text-embedding-3-small") is None


def test_completion_inferred_from_stated_total() -> None:
    cost = compute_cost(Usage(prompt_tokens=1000, total_tokens=1200), "gpt-4o")
    assert cost is not None
    assert (cost.input, cost.output, cost.total) == (0.0025, 0.002, 0.0045)


def test_provider_reported_cost_wins() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=100)
    for model in ("openai/gpt-4o", "meta-llama/llama-3.1-70b", None):
        cost = compute_cost(usage, model, provider="openrouter", reported_cost=0.0042)
        assert cost == Cost(0.0042, None, None, None, None, source="provider")
        assert cost is not None and cost.model_key is None and cost.table_version is None
    assert compute_cost(Usage(), "gpt-4o", reported_cost=0) == Cost(
        0.0, None, None, None, None, source="provider"
    )


def test_unusable_reported_cost_falls_back_to_table() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=100)
    for reported in (math.nan, math.inf, -1.0):
        cost = compute_cost(usage, "gpt-4o", reported_cost=reported)
        assert cost is not None and cost.source == "price_table" and cost.total == 0.0035


def test_overrides_win() -> None:
    table = PriceTable.default().with_overrides({"gpt-4o": {"input": 2.0}})
    cost = compute_cost(Usage(prompt_tokens=1000, completion_tokens=100), "gpt-4o-2024-08-06", table=table)
    assert cost is not None
    assert (cost.total, cost.input, cost.output, cost.source, cost.model_key) == (
        0.003,
        0.002,
        0.001,
        "override",
        "gpt-4o",
    )
    untouched = compute_cost(Usage(prompt_tokens=1000, completion_tokens=100), "gpt-4o-mini", table=table)
    assert untouched is not None and untouched.source == "price_table"


def test_missing_cache_price_falls_back_to_input_price() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=0, cache_read_tokens=600)
    cost = compute_cost(usage, "gemini-2.0-flash-lite")
    assert cost is not None
    assert (cost.input, cost.cache_read, cost.output, cost.total) == (0.00003, 0.000045, 0.0, 0.000075)


@pytest.mark.parametrize("model", ["not-a-model", "gpt-5-pro", "claude-opus-4-9", None, ""])
def test_unknown_model_costs_nothing_known(model: str | None) -> None:
    assert compute_cost(Usage(prompt_tokens=1000, completion_tokens=100), model) is None


@pytest.mark.parametrize(
    "usage",
    [
        Usage(),  # nothing reported
        Usage(cache_read_tokens=10),  # no prompt/completion/total
        Usage(completion_tokens=100),  # no prompt count
        Usage(total_tokens=500),
        Usage(prompt_tokens=100),  # chat model, output unknown
        Usage(prompt_tokens=100, total_tokens=90),  # total below prompt: output unknown
        Usage(prompt_tokens=100, completion_tokens=10, cache_read_tokens=80, cache_write_tokens=40),
        Usage(prompt_tokens=100, completion_tokens=10, reasoning_tokens=11),
        Usage(prompt_tokens=-1, completion_tokens=10),
        Usage(prompt_tokens=100, completion_tokens=-10),
    ],
)
def test_incomplete_or_contradictory_usage_gives_none(usage: Usage) -> None:
    assert compute_cost(usage, "gpt-4o") is None


def test_zero_usage_is_a_zero_cost() -> None:
    cost = compute_cost(Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0), "gpt-4o")
    assert cost is not None and cost.total == 0.0 and cost.output == 0.0


def test_cost_is_frozen() -> None:
    cost = Cost(1.0, None, None, None, None, source="provider")
    assert cost.currency == "USD"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cost.total = 2.0  # type: ignore[misc]
