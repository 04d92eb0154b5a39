"""A tokenizer and parser for MLflow's search filter and order_by strings.

The grammar is the same for every searchable entity (runs, experiments, registry, logged models):

    filter     := comparison ( AND comparison )*
    comparison := identifier comparator value | identifier IS [NOT] NULL
    identifier := [type "."] key          key: bare word, `backticked` or "double-quoted"
    value      := 'string' | "string" | number | "(" value ("," value)* ")" | bare word
    order_by   := identifier [ASC | DESC]

The parser only checks shape. Which types, keys, comparators and value kinds an entity accepts is
decided by `rules.py` from per-entity tables, so a bare word or a number on the right-hand side is
kept (as `ValueKind.BARE` / `NUMBER`) and rejected there with the message MLflow gives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from tracking_core.errors import MlflowError, invalid

# Bounds on what a filter may ask of the database. A filter past them can never succeed (SQLite
# stops at an expression depth of 1000; a huge LIKE pattern costs seconds per row scan), so it is
# refused up front with a message saying which bound, rather than sent and failed as a 503 the
# client would retry. MLflow's own client, UI and docs stay far inside them.
MAX_FILTER_LENGTH = 20_000
MAX_FILTER_CLAUSES = 100
MAX_LIKE_PATTERN_LENGTH = 1_000


class TokenKind(Enum):
    WORD = "word"  # identifiers and keywords; may contain dots (`tags.mlflow.runName`)
    STRING = "string"  # '...' or "..."
    BACKTICK = "backtick"  # `...`
    NUMBER = "number"
    OP = "op"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str  # as written, quotes included, so errors can echo it back
    value: str  # unquoted content for strings, same as `text` otherwise
    start: int
    quote: str = ""


# Keys of metrics and params routinely contain `-`, `/` and `:` (`val-loss`, `eval/acc`), so words
# take them; a word must still start with a letter or `_` so `-1` and `.5` stay numbers.
_WORD = re.compile(r"[^\W\d][\w.\-/:]*")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_OP = re.compile(r"==|!=|<>|<=|>=|=|<|>")
_PUNCT = {"(": TokenKind.LPAREN, ")": TokenKind.RPAREN, ",": TokenKind.COMMA}


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char.isspace():
            pos += 1
        elif char in "'\"`":
            token = _read_quoted(text, pos)
            tokens.append(token)
            pos += len(token.text)
        elif char in _PUNCT:
            tokens.append(Token(_PUNCT[char], char, char, pos))
            pos += 1
        elif match := _NUMBER.match(text, pos):
            tokens.append(Token(TokenKind.NUMBER, match.group(), match.group(), pos))
            pos = match.end()
        elif match := _WORD.match(text, pos):
            tokens.append(Token(TokenKind.WORD, match.group(), match.group(), pos))
            pos = match.end()
        elif match := _OP.match(text, pos):
            tokens.append(Token(TokenKind.OP, match.group(), match.group(), pos))
            pos = match.end()
        else:
            raise invalid(f"Invalid character {char!r} at position {pos} in search string {text!r}")
    return tokens


def _read_quoted(text: str, start: int) -> Token:
    """Read a quoted token; the quote is escaped by doubling it or by a backslash."""
    quote = text[start]
    chars: list[str] = []
    pos = start + 1
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text) and text[pos + 1] in (quote, "\\"):
            chars.append(text[pos + 1])
            pos += 2
        elif char == quote and text[pos + 1 : pos + 2] == quote:
            chars.append(quote)
            pos += 2
        elif char == quote:
            kind = TokenKind.BACKTICK if quote == "`" else TokenKind.STRING
            return Token(kind, text[start : pos + 1], "".join(chars), start, quote)
        else:
            chars.append(char)
            pos += 1
    raise invalid(f"Unterminated quoted string starting at position {start} in search string {text!r}")


@dataclass(frozen=True)
class Identifier:
    type: str | None  # the prefix as written (`metrics`, `attr`, ...); None when bare
    key: str
    text: str  # as written, for messages


class ValueKind(Enum):
    STRING = "string"
    NUMBER = "number"
    LIST = "list"
    BARE = "bare"  # an unquoted word or a backticked name: never a valid value, kept for the message


@dataclass(frozen=True)
class Value:
    kind: ValueKind
    text: str  # as written
    value: str  # unquoted content (strings) or the literal (numbers, bare words)
    items: tuple[Value, ...] = ()


@dataclass(frozen=True)
class Comparison:
    identifier: Identifier
    comparator: str  # `=`, `!=`, `<`, ..., `LIKE`, `ILIKE`, `IN`, `NOT IN`, `IS NULL`, `IS NOT NULL`
    value: Value | None  # None for IS [NOT] NULL


@dataclass(frozen=True)
class OrderClause:
    identifier: Identifier
    ascending: bool
    text: str


class _Cursor:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self) -> Token | None:
        token = self.peek()
        self.pos += token is not None
        return token

    def is_word(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind is TokenKind.WORD and token.value.lower() in words


def _invalid_clause(cursor: _Cursor, start: int, token: Token | None) -> MlflowError:
    """MLflow's message, quoting the offending clause from `start` up to and including `token`."""
    if token is not None and start == token.start and token.kind in (TokenKind.WORD, TokenKind.LPAREN):
        if token.kind is TokenKind.LPAREN:
            return invalid(f"Invalid clause(s) in filter string: '{_group_text(cursor.text, token.start)}'")
        return invalid(f"Invalid clause(s) in filter string: '{token.text}'")
    end = token.start + len(token.text) if token is not None else len(cursor.text)
    return invalid(f"Invalid clause(s) in filter string: '{cursor.text[start:end].strip()}'")


def _group_text(text: str, start: int) -> str:
    depth = 0
    for pos in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[pos], 0)
        if depth == 0:
            return text[start : pos + 1]
    return text[start:]


_KEYWORDS = {"and", "or", "not", "in", "like", "ilike", "is", "null"}


def _identifier(cursor: _Cursor, clause_start: int) -> Identifier:
    token = cursor.next()
    if token is not None and token.kind is TokenKind.WORD and token.value.lower() not in _KEYWORDS:
        if token.value.endswith("."):
            quoted = cursor.peek()
            if quoted is None or not _is_quoted_key(quoted):
                raise _invalid_clause(cursor, clause_start, quoted or token)
            cursor.next()
            return Identifier(token.value[:-1], quoted.value, token.text + quoted.text)
        type_, dot, key = token.value.partition(".")
        return Identifier(type_, key, token.text) if dot else Identifier(None, token.value, token.text)
    if token is not None and _is_quoted_key(token):
        return Identifier(None, token.value, token.text)
    raise _invalid_clause(cursor, clause_start, token)


def _is_quoted_key(token: Token) -> bool:
    # Single quotes mean a string value, never a key.
    return token.kind is TokenKind.BACKTICK or (token.kind is TokenKind.STRING and token.quote == '"')


_LITERALS = {
    TokenKind.STRING: ValueKind.STRING,
    TokenKind.NUMBER: ValueKind.NUMBER,
    TokenKind.WORD: ValueKind.BARE,
}


def _value(cursor: _Cursor, clause_start: int) -> Value:
    token = cursor.next()
    if token is None:
        raise _invalid_clause(cursor, clause_start, None)
    if token.kind is TokenKind.LPAREN:
        return _list(cursor, token, clause_start)
    if token.kind is TokenKind.BACKTICK:
        return Value(ValueKind.BARE, token.text, token.value)
    if token.kind in _LITERALS:
        return Value(_LITERALS[token.kind], token.text, token.value)
    raise _invalid_clause(cursor, clause_start, token)


def _list(cursor: _Cursor, opener: Token, clause_start: int) -> Value:
    items: list[Value] = []
    while True:
        item = cursor.next()
        if item is not None and item.kind is TokenKind.RPAREN and not items:
            raise invalid(
                "While parsing a list in the query, expected a non-empty list of string values, "
                "but got empty list"
            )
        if item is None or item.kind not in _LITERALS:
            raise _invalid_clause(cursor, clause_start, item)
        items.append(Value(_LITERALS[item.kind], item.text, item.value))
        closer = cursor.next()
        if closer is not None and closer.kind is TokenKind.RPAREN:
            text = cursor.text[opener.start : closer.start + 1]
            return Value(ValueKind.LIST, text, text, tuple(items))
        if closer is None or closer.kind is not TokenKind.COMMA:
            raise _invalid_clause(cursor, clause_start, closer)


def _comparison(cursor: _Cursor) -> Comparison:
    first = cursor.peek()
    start = first.start if first is not None else len(cursor.text)
    identifier = _identifier(cursor, start)
    token = cursor.next()
    if token is None:
        raise _invalid_clause(cursor, start, None)
    word = token.value.upper() if token.kind is TokenKind.WORD else None
    if token.kind is TokenKind.OP or word in ("LIKE", "ILIKE", "IN"):
        comparator = word or token.value
        value = _value(cursor, start)
        if word in ("LIKE", "ILIKE") and len(value.value) > MAX_LIKE_PATTERN_LENGTH:
            raise invalid(
                f"The {word} pattern for '{identifier.text}' is {len(value.value)} characters long; "
                f"the limit is {MAX_LIKE_PATTERN_LENGTH}."
            )
        return Comparison(identifier, comparator, value)
    if word == "NOT" and cursor.is_word("in"):
        cursor.next()
        return Comparison(identifier, "NOT IN", _value(cursor, start))
    if word == "IS":
        negated = cursor.is_word("not")
        if negated:
            cursor.next()
        null = cursor.next()
        if null is None or null.kind is not TokenKind.WORD or null.value.upper() != "NULL":
            raise _invalid_clause(cursor, start, null)
        return Comparison(identifier, "IS NOT NULL" if negated else "IS NULL", None)
    raise _invalid_clause(cursor, start, token)


def parse_filter(text: str | None) -> list[Comparison]:
    """Parse a filter string into comparisons that are all to hold (an empty filter → [])."""
    if text is None or not text.strip():
        return []
    if len(text) > MAX_FILTER_LENGTH:
        raise invalid(
            f"The filter string is {len(text)} characters long; the limit is {MAX_FILTER_LENGTH}. "
            "Split the search into narrower ones."
        )
    cursor = _Cursor(text)
    comparisons = [_comparison(cursor)]
    while (token := cursor.next()) is not None:
        if token.kind is not TokenKind.WORD or token.value.lower() != "and":
            raise _invalid_clause(cursor, token.start, token)
        if cursor.peek() is None:
            raise invalid(f"Invalid filter string {text!r}: expected a condition after '{token.text}'")
        if len(comparisons) == MAX_FILTER_CLAUSES:
            raise invalid(
                f"The filter string has more than {MAX_FILTER_CLAUSES} conditions joined by AND; "
                f"the limit is {MAX_FILTER_CLAUSES}."
            )
        comparisons.append(_comparison(cursor))
    return comparisons


def parse_order_by(text: str) -> OrderClause:
    """Parse one order_by element, `<identifier> [ASC|DESC]`."""
    cursor = _Cursor(text) if text.strip() else None
    if cursor is None:
        raise invalid(f"Invalid order_by clause '{text}'. Could not be parsed.")
    try:
        identifier = _identifier(cursor, 0)
    except MlflowError:
        raise invalid(f"Invalid order_by clause '{text}'. Could not be parsed.") from None
    direction = cursor.next()
    if cursor.peek() is not None:
        raise invalid(f"Invalid order_by clause '{text}'. Could not be parsed.")
    if direction is None:
        return OrderClause(identifier, True, text)
    if direction.kind is TokenKind.WORD and direction.value.upper() in ("ASC", "DESC"):
        return OrderClause(identifier, direction.value.upper() == "ASC", text)
    raise invalid(f"Invalid ordering key in order_by clause '{text}'. Expected ASC or DESC.")
