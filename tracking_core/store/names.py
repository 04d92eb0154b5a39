"""Readable random run names (`<adjective>-<animal>-<number>`), as MLflow gives unnamed runs."""

import secrets

_ADJECTIVES = (
    "amber", "bold", "brave", "bright", "calm", "clever", "crisp", "daring", "eager", "fair", "fleet",
    "gentle", "glad", "grand", "honest", "keen", "kind", "lively", "lucid", "merry", "nimble", "noble",
    "patient", "polite", "proud", "quick", "quiet", "rapid", "ready", "shiny", "silent", "smart",
    "steady", "sunny", "swift", "tidy", "vivid", "warm", "wise", "zesty",
)
_ANIMALS = (
    "badger", "bat", "bear", "bee", "bison", "crane", "crow", "deer", "dove", "eagle", "eel", "finch",
    "fox", "frog", "gecko", "goat", "hare", "hawk", "heron", "ibis", "koala", "lark", "lemur", "lynx",
    "mole", "moose", "newt", "otter", "owl", "panda", "quail", "raven", "seal", "shrew", "sloth",
    "snail", "stork", "swan", "toad", "wolf", "wren", "yak",
)


def random_run_name() -> str:
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_ANIMALS)}-{secrets.randbelow(1000):03d}"
