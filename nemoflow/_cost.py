"""What an LLM call cost: a dated price table, model-name matching, and arithmetic on :class:`Usage`.

The bundled table (``nemoflow/data/prices.json``) holds list prices in USD per million tokens, with the
date they were compiled. Prices change; when yours differ (negotiated rates, a hosting provider's
premium, a model the table does not know), layer your own over it with :meth:`PriceTable.with_overrides`.

A cost is never guessed: an unknown model, a usage without counts, or a token class the table cannot
price gives ``None``, not zero.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import KW_ONLY, dataclass
from decimal import Decimal
from importlib.resources import files
from types import MappingProxyType
from typing import Any, Literal

from nemoflow._model import Usage

__all__ = ["Cost", "ModelPrice", "PriceTable", "compute_cost"]

_UNIT = "per_million_tokens"
_MILLION = Decimal(1_000_000)
_PRICE_FIELDS = ("input", "output", "cache_read", "cache_write", "reasoning")
_ENTRY_FIELDS = frozenset({*_PRICE_FIELDS, "provider", "aliases"})
_LOOKUP_CACHE_SIZE = 4096

# What may follow a known model name and still be the same model at the same price: dated snapshots
# (``-2024-08-06``, ``-20250929``, ``@20241022``, OpenAI's ``-0613``), Gemini's ``-001`` versions,
# Bedrock's ``-v1:0`` and ``latest``. One- and two-digit tails are refused on purpose: in
# ``claude-opus-4-9`` the ``9`` is a new minor version, which may well have a new price.
_SNAPSHOT_TAIL = re.compile(r"(?:[-@:](?:\d{4}-\d{2}-\d{2}|\d{8}|\d{3,4}|v\d+(?::\d+)?|latest))+")
# Bedrock's vendor and cross-region prefixes: ``anthropic.``, ``us.anthropic.``, ``global.anthropic.``.
_DOTTED_VENDOR = re.compile(r"(?:[a-z]+(?:-[a-z]+)*\.){1,2}(?=[a-z])")
# OpenRouter writes Claude versions with dots (``claude-3.5-sonnet``); Anthropic uses dashes.
_DOTTED_VERSION = re.compile(r"(?<=\d)\.(?=\d)")


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Prices of one model in a currency unit per million tokens; ``None`` where there is no own price.

    ``cache_read`` and ``cache_write`` left ``None`` mean those prompt tokens cost the ``input`` price;
    ``reasoning`` left ``None`` means reasoning tokens cost the ``output`` price. ``output`` is ``None``
    for models that bill no output tokens (embeddings).
    """

    input: float | None
    """Price of a fresh (uncached) prompt token."""
    output: float | None
    """Price of a completion token."""
    cache_read: float | None = None
    """Price of a prompt token served from the provider's cache."""
    cache_write: float | None = None
    """Price of a prompt token written to the provider's cache."""
    reasoning: float | None = None
    """Price of a reasoning token, where it differs from the output price."""

    def __post_init__(self) -> None:
        for name in _PRICE_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"ModelPrice.{name} must be a number or None, not {type(value).__name__}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"ModelPrice.{name} must be a finite, non-negative number, not {value!r}")
            object.__setattr__(self, name, float(value))


@dataclass(frozen=True, slots=True)
class Cost:
    """What one call cost, split by token class.

    The amounts add up to ``total``. An amount is ``None`` when that class was not reported (no cache
    counts in the usage) or not billed (embeddings have no output), and always ``None`` when the
    provider reported the cost itself, since the provider gives no split.
    """

    total: float
    """The whole cost."""
    input: float | None
    """Fresh prompt tokens: those neither read from nor written to the cache."""
    output: float | None
    """Completion tokens, reasoning included."""
    cache_read: float | None
    """Prompt tokens read from the cache."""
    cache_write: float | None
    """Prompt tokens written to the cache."""
    _: KW_ONLY
    currency: str = "USD"
    """ISO 4217 code of every amount."""
    source: Literal["provider", "price_table", "override"]
    """Where the figure comes from: the provider's own report, the bundled table, or a user override."""
    table_version: str | None = None
    """Version (compilation date) of the price table used; ``None`` for provider-reported costs."""
    model_key: str | None = None
    """The table entry the model name matched; ``None`` for provider-reported costs."""


@dataclass(frozen=True, slots=True)
class _Match:
    key: str
    price: ModelPrice


class PriceTable:
    """Model prices with the name matching needed to find them from what a provider reports.

    Build one with :meth:`default` (the bundled table), :meth:`from_mapping` (your own data in the same
    shape as the bundled JSON) or the constructor; derive adjusted copies with :meth:`with_overrides`.
    Instances are immutable and safe to share between threads.

    A key may be scoped to a hosting provider as ``"provider/model"`` (``"azure/gpt-4o"``); such an
    entry applies when :meth:`lookup` is given that provider, or to the exact name ``"azure/gpt-4o"``.
    """

    __slots__ = (
        "_cache",
        "_cache_lock",
        "_currency",
        "_generic",
        "_models",
        "_overridden",
        "_raw",
        "_scoped",
        "_source",
        "_version",
    )

    def __init__(
        self,
        models: Mapping[str, ModelPrice],
        *,
        version: str | None = None,
        currency: str = "USD",
        source: str | None = None,
        aliases: Mapping[str, Iterable[str]] | None = None,
        overridden: Iterable[str] = (),
    ) -> None:
        """Create a table.

        Args:
            models: Prices by model name (matched case-insensitively).
            version: When the prices were compiled (an ISO date is customary).
            currency: ISO 4217 code of every price.
            source: Where the figures come from, for people reading the table.
            aliases: Other names of an entry, by the entry's key.
            overridden: Keys whose prices a user supplied; costs from them say ``source="override"``.

        Raises:
            ValueError: A key or alias is empty or defined twice (keys differing only in case count as
                the same), or aliases are given for a key the table does not have.
            TypeError: A price is not a :class:`ModelPrice`.
        """
        normalized: dict[str, ModelPrice] = {}
        for key, price in models.items():
            name = key.strip().lower()
            if not name:
                raise ValueError("a model name in the price table is empty")
            if name in normalized:
                raise ValueError(f"model {name!r} appears twice in the price table")
            if not isinstance(price, ModelPrice):
                raise TypeError(f"price of {name!r} must be a ModelPrice, not {type(price).__name__}")
            normalized[name] = price
        self._models: Mapping[str, ModelPrice] = MappingProxyType(normalized)
        self._version = version
        self._currency = currency
        self._source = source
        self._overridden = frozenset(name.strip().lower() for name in overridden)
        alias_map: dict[str, tuple[str, ...]] = {}
        for key, names in (aliases or {}).items():
            owner = key.strip().lower()
            if owner not in normalized:
                raise ValueError(f"aliases given for {owner!r}, which is not in the price table")
            alias_map[owner] = tuple(name.strip().lower() for name in names)
        self._raw: dict[str, str] = {}  # every key and alias as written, lower-cased
        self._generic: dict[str, str] = {}  # normalized name -> key, for unscoped entries
        self._scoped: dict[str, dict[str, str]] = {}  # provider -> normalized name -> key
        for key in normalized:
            self._index(key, key, alias=False)
        for owner, names in alias_map.items():
            for name in names:
                if not name:
                    raise ValueError(f"an alias of {owner!r} is empty")
                self._index(name, owner, alias=True)
        self._cache: dict[tuple[str, str | None], _Match | None] = {}
        self._cache_lock = threading.Lock()

    def _index(self, name: str, key: str, *, alias: bool) -> None:
        if alias and name in self._raw:
            if self._raw[name] == key:
                return
            if name in self._models:
                return  # a key of its own shadows an alias of another entry
            raise ValueError(f"alias {name!r} names both {self._raw[name]!r} and {key!r}")
        self._raw[name] = key
        scope, _, rest = name.partition("/")
        if rest:
            self._scoped.setdefault(scope, {}).setdefault(_normalize(rest), key)
        else:
            self._generic.setdefault(_normalize(name), key)

    # ------------------------------------------------------------------------------------------- loading

    @classmethod
    def default(cls) -> PriceTable:
        """The bundled price table, loaded once and shared."""
        return _bundled_table()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PriceTable:
        """Build a table from data shaped like the bundled ``prices.json``.

        The shape is ``{"version": ..., "currency": ..., "unit": "per_million_tokens", "source": ...,
        "models": {name: {"input": ..., "output": ..., "cache_read": ..., "cache_write": ...,
        "reasoning": ..., "provider": ..., "aliases": [...]}}}``. Only ``models`` and each entry's
        ``input`` are required; a missing price is ``None``. Keys other than those are refused inside an
        entry (a misspelt price must not pass silently) and ignored at the top level.

        Args:
            data: The table, e.g. parsed JSON.

        Returns:
            The table.

        Raises:
            ValueError: The data is not of that shape, or a price is negative or not a number.
        """
        if not isinstance(data, Mapping):
            raise ValueError("a price table must be a mapping")
        unit = data.get("unit", _UNIT)
        if unit != _UNIT:
            raise ValueError(f"price table unit must be {_UNIT!r}, not {unit!r}")
        version = _optional_str(data, "version")
        source = _optional_str(data, "source")
        currency = data.get("currency", "USD")
        if not isinstance(currency, str) or not currency:
            raise ValueError("price table currency must be a non-empty string")
        entries = data.get("models")
        if not isinstance(entries, Mapping):
            raise ValueError("price table needs a 'models' mapping")
        models: dict[str, ModelPrice] = {}
        aliases: dict[str, list[str]] = {}
        for name, entry in entries.items():
            if not isinstance(name, str):
                raise ValueError(f"model name {name!r} is not a string")
            if not isinstance(entry, Mapping):
                raise ValueError(f"entry of {name!r} must be a mapping")
            unknown = set(entry) - _ENTRY_FIELDS
            if unknown:
                raise ValueError(f"entry of {name!r} has unknown fields {sorted(unknown)}")
            if entry.get("input") is None:
                raise ValueError(f"entry of {name!r} has no input price")
            try:
                models[name] = ModelPrice(**{field: entry.get(field) for field in _PRICE_FIELDS})
            except (TypeError, ValueError) as error:
                raise ValueError(f"entry of {name!r}: {error}") from None
            names = entry.get("aliases", [])
            if not isinstance(names, list) or not all(isinstance(alias, str) for alias in names):
                raise ValueError(f"aliases of {name!r} must be a list of strings")
            aliases[name] = names
        return cls(models, version=version, currency=currency, source=source, aliases=aliases)

    def with_overrides(self, overrides: Mapping[str, ModelPrice | Mapping[str, float | None]]) -> PriceTable:
        """A copy of this table with some prices replaced or added; the overridden ones win.

        A :class:`ModelPrice` replaces the entry whole. A mapping changes only the prices it names
        (``{"gpt-4o": {"input": 2.0}}`` keeps the output and cache prices of ``gpt-4o``); for a name the
        table does not have, it must give at least ``input``. A name that is an alias or a table key
        (any case) overrides that exact name; to price a hosting provider apart, use a scoped key such
        as ``"azure/gpt-4o"``, which as a mapping starts from the unscoped entry's prices. Costs
        computed from an overridden entry say ``source="override"``.

        Args:
            overrides: Prices by model name.

        Returns:
            The new table; this one is unchanged.

        Raises:
            ValueError: An override names an unknown price field, gives a bad price (the message names
                the model and the field), or lacks ``input`` for a new model.
            TypeError: ``overrides`` is not a mapping, a key is not a string, or a value is neither a
                :class:`ModelPrice` nor a mapping.
        """
        if not isinstance(overrides, Mapping):
            raise TypeError(
                "price overrides must be a mapping of model name to prices "
                f"(such as {{'gpt-4o': {{'input': 2.0}}}}), not {type(overrides).__name__}"
            )
        models = dict(self._models)
        overridden = set(self._overridden)
        for name, value in overrides.items():
            if not isinstance(name, str):
                raise TypeError(
                    f"price override keys must be model names (str), not {type(name).__name__}: {name!r}"
                )
            key = name.strip().lower()
            if not key:
                raise ValueError("an override has an empty model name")
            if isinstance(value, ModelPrice):
                price = value
            elif isinstance(value, Mapping):
                unknown = set(value) - set(_PRICE_FIELDS)
                if unknown:
                    raise ValueError(f"override of {key!r} has unknown fields {sorted(unknown)}")
                base_key = self._raw.get(key)
                rest = key.partition("/")[2]
                if base_key is None and rest:  # a scoped price starts from the unscoped one
                    base_key = self._resolve(rest, None)
                base = self._models[base_key] if base_key is not None else None
                if base is None and value.get("input") is None:
                    raise ValueError(f"override of {key!r} adds a new model and must give an input price")
                merged = {field: value.get(field, getattr(base, field, None)) for field in _PRICE_FIELDS}
                if merged["input"] is None:
                    raise ValueError(f"override of {key!r} sets input to None: a priced model needs one")
                try:
                    price = ModelPrice(**merged)
                except (TypeError, ValueError) as error:
                    raise ValueError(f"override of {key!r}: {error}") from None
            else:
                raise TypeError(
                    f"override of {key!r} must be a ModelPrice or a mapping of prices such as "
                    f"{{'input': 2.0, 'output': 8.0}}, not {type(value).__name__}"
                )
            models[key] = price
            overridden.add(key)
        aliases = self._aliases()
        return PriceTable(
            models,
            version=self._version,
            currency=self._currency,
            source=self._source,
            aliases={owner: [a for a in names if a not in overridden] for owner, names in aliases.items()},
            overridden=overridden,
        )

    def _aliases(self) -> dict[str, list[str]]:
        aliases: dict[str, list[str]] = {}
        for name, key in self._raw.items():
            if name != key:
                aliases.setdefault(key, []).append(name)
        return aliases

    # ------------------------------------------------------------------------------------------- facts

    @property
    def version(self) -> str | None:
        """When the prices were compiled (the bundled table uses an ISO date)."""
        return self._version

    @property
    def currency(self) -> str:
        """ISO 4217 code of every price."""
        return self._currency

    @property
    def source(self) -> str | None:
        """Where the figures come from."""
        return self._source

    @property
    def models(self) -> Mapping[str, ModelPrice]:
        """Every entry by key (lower-cased), read-only."""
        return self._models

    def is_override(self, key: str) -> bool:
        """Whether the entry ``key`` holds a price supplied through :meth:`with_overrides`."""
        return key.strip().lower() in self._overridden

    def __repr__(self) -> str:
        return f"PriceTable(version={self._version!r}, models={len(self._models)})"

    # ------------------------------------------------------------------------------------------- lookup

    def lookup(self, model: str | None, provider: str | None = None) -> tuple[str, ModelPrice] | None:
        """Find the price of ``model`` as a provider reports it.

        Tried in turn, case-insensitively: when ``provider`` is given, entries scoped to it
        (``"azure/gpt-4o"``); the name exactly as given; then the bare name. The bare name drops path
        prefixes (``openai/gpt-4o``, ``publishers/google/models/gemini-2.5-pro``,
        ``models/gemini-2.5-flash``), Bedrock vendor and region prefixes (``us.anthropic.claude-...``)
        and OpenRouter's dotted Claude versions (``claude-3.5-sonnet``); it then matches a key or alias
        exactly, or the longest key that it extends by a dated snapshot or version tail only
        (``gpt-4o-2024-08-06`` is ``gpt-4o``, ``claude-sonnet-4-5-20250929`` is ``claude-sonnet-4-5``,
        ``...-20240620-v1:0`` and ``...@20241022`` too). Any other tail is a different model, so
        ``gpt-4o-mini-transcribe``, ``gpt-5-pro`` or ``claude-opus-4-9`` match nothing rather than a
        cheaper cousin.

        Args:
            model: The model name, as in the request or the response.
            provider: The hosting provider (``openai``, ``azure``, ``bedrock``...), for scoped entries.

        Returns:
            The matched entry's key and price, or ``None`` when the table does not know the model.
        """
        match = self._match(model, provider)
        return None if match is None else (match.key, match.price)

    def _match(self, model: str | None, provider: str | None) -> _Match | None:
        if not model or not model.strip():
            return None
        scope = provider.strip().lower() if provider else None
        cache_key = (model, scope)
        try:
            return self._cache[cache_key]
        except KeyError:
            pass
        key = self._resolve(model.strip().lower(), scope)
        match = None if key is None else _Match(key, self._models[key])
        with self._cache_lock:
            if len(self._cache) >= _LOOKUP_CACHE_SIZE:
                self._cache.clear()
            self._cache[cache_key] = match
        return match

    def _resolve(self, raw: str, scope: str | None) -> str | None:
        name = _normalize(raw)
        if scope and scope in self._scoped:
            key = _find(name, self._scoped[scope])
            if key is not None:
                return key
        if raw in self._raw:
            return self._raw[raw]
        return _find(name, self._generic)


def _normalize(name: str) -> str:
    name = name.rsplit("/", 1)[-1]
    vendor = _DOTTED_VENDOR.match(name)
    if vendor is not None:
        name = name[vendor.end() :]
    if name.startswith("claude"):
        name = _DOTTED_VERSION.sub("-", name)
    return name


def _find(name: str, names: Mapping[str, str]) -> str | None:
    if name in names:
        return names[name]
    best: str | None = None
    for index, char in enumerate(name):
        if char in "-@:" and name[:index] in names and _SNAPSHOT_TAIL.fullmatch(name, index):
            best = name[:index]  # later cut, longer prefix: the last one found wins
    return None if best is None else names[best]


def _optional_str(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"price table {name} must be a string")
    return value


_BUNDLED: PriceTable | None = None
_BUNDLED_LOCK = threading.Lock()


def _bundled_table() -> PriceTable:
    global _BUNDLED
    if _BUNDLED is None:
        with _BUNDLED_LOCK:
            if _BUNDLED is None:
                text = files("nemoflow").joinpath("data", "prices.json").read_text(encoding="utf-8")
                _BUNDLED = PriceTable.from_mapping(json.loads(text))
    return _BUNDLED


# ----------------------------------------------------------------------------------------- cost


def compute_cost(
    usage: Usage,
    model: str | None,
    *,
    provider: str | None = None,
    reported_cost: float | None = None,
    table: PriceTable | None = None,
) -> Cost | None:
    """What a call cost, from the provider's own figure or from token counts and a price table.

    A ``reported_cost`` (OpenRouter's ``usage.cost``, :attr:`AnnotatedLlmResponse.cost`) wins when it is
    a finite, non-negative number: it becomes ``total`` with ``source="provider"`` and no split.

    Otherwise the model is looked up (:meth:`PriceTable.lookup`) and the usage priced, each class at
    its own price, ``tokens * price / 1e6`` in exact decimal arithmetic:

    * ``input``: prompt tokens minus cache reads and writes, at the input price;
    * ``cache_read`` / ``cache_write``: at their own prices, or the input price when the table has none;
    * ``output``: completion tokens, reasoning tokens at the reasoning price when the table has one and
      at the output price otherwise.

    Missing counts are handled so that a cost is returned only when every billed class is known, and
    ``total`` is never a partial sum:

    * no counts at all, or no ``prompt_tokens``: ``None``;
    * no ``completion_tokens``: taken as ``total_tokens - prompt_tokens`` when the provider stated a
      total (embeddings report prompt and total only, so their output is 0); failing that ``None``,
      unless the model bills no output (embeddings), whose ``output`` is then ``None``;
    * no cache or reasoning counts: none are taken to have happened, so every prompt token is billed at
      the input price (an upper bound) and the cache amounts are ``None``;
    * counts that contradict each other (cache counts above the prompt, reasoning above the completion)
      or a token class the model has no price for: ``None``.

    Args:
        usage: Token counts of the call.
        model: Model name as reported (the response's model, else the request's).
        provider: Hosting provider, for entries scoped to it (see :meth:`PriceTable.lookup`).
        reported_cost: Cost the provider reported itself, in USD.
        table: Prices to use; the bundled table when ``None``.

    Returns:
        The cost, or ``None`` when it cannot be known: never a made-up zero.
    """
    if reported_cost is not None and math.isfinite(reported_cost) and reported_cost >= 0:
        return Cost(float(reported_cost), None, None, None, None, source="provider")
    if not usage.reported or usage.prompt_tokens is None:
        return None
    table = PriceTable.default() if table is None else table
    match = table._match(model, provider)
    if match is None:
        return None
    price = match.price
    prompt = usage.prompt_tokens
    completion = usage.completion_tokens
    if completion is None and usage.total_tokens is not None and usage.total_tokens >= prompt:
        completion = usage.total_tokens - prompt
    cache_read = usage.cache_read_tokens or 0
    cache_write = usage.cache_write_tokens or 0
    reasoning = usage.reasoning_tokens or 0
    fresh = prompt - cache_read - cache_write
    if min(prompt, cache_read, cache_write, reasoning, fresh) < 0 or price.input is None:
        return None

    input_amount = _amount(fresh, price.input)
    read_amount = None
    if usage.cache_read_tokens is not None:
        read_amount = _amount(cache_read, _first(price.cache_read, price.input))
    write_amount = None
    if usage.cache_write_tokens is not None:
        write_amount = _amount(cache_write, _first(price.cache_write, price.input))

    output_amount: Decimal | None
    if price.output is None:
        if completion:  # output tokens the table cannot price
            return None
        output_amount = None
    elif completion is None or completion < 0 or reasoning > completion:
        return None
    else:
        reasoning_price = _first(price.reasoning, price.output)
        output_amount = _amount(completion - reasoning, price.output) + _amount(reasoning, reasoning_price)

    parts = (input_amount, output_amount, read_amount, write_amount)
    total = sum((part for part in parts if part is not None), Decimal(0))
    return Cost(
        float(total),
        float(input_amount),
        _float(output_amount),
        _float(read_amount),
        _float(write_amount),
        currency=table.currency,
        source="override" if table.is_override(match.key) else "price_table",
        table_version=table.version,
        model_key=match.key,
    )


def _first(price: float | None, fallback: float) -> float:
    return fallback if price is None else price


def _amount(tokens: int, price_per_million: float) -> Decimal:
    return Decimal(tokens) * Decimal(repr(price_per_million)) / _MILLION


def _float(amount: Decimal | None) -> float | None:
    return None if amount is None else float(amount)
