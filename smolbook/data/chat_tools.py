"""Tools over the generated world, for the tool-calling conversations: their schemas and their results.

Three tools, each a pure function of the world: a person's birthplace, a city's record (country, river,
founding year, population) and arithmetic. The world has no populations, so :func:`city_population`
derives one from a keyed hash of the city's name: the same city always gets the same number, and no
document ever states it, so a model can only learn it by calling the tool.

A call the conversation generator or a model makes is a :class:`smolbook.chat.ToolCall`;
:func:`run_tool` answers it with the JSON text a tool turn carries, and answers a call it cannot run
(unknown tool, missing or wrong argument, unknown person) with ``{"error": ...}`` rather than raising,
the way an agent loop hands errors back to the model.
"""
from __future__ import annotations

import json
import zlib
from typing import Any

from smolbook.chat import ToolCall
from smolbook.data.world import World

TOOL_SCHEMAS: dict[str, dict[str, Any]] = {
    "get_birthplace": {
        "name": "get_birthplace",
        "description": "The city where a person was born.",
        "parameters": {"type": "object", "properties": {"person": {"type": "string", "description": "full name"}},
                       "required": ["person"]},
    },
    "get_city_info": {
        "name": "get_city_info",
        "description": "A city's country, river, founding year and population.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "city name"}},
                       "required": ["city"]},
    },
    "calculate": {
        "name": "calculate",
        "description": "Apply an arithmetic operator ('+', '-' or '*') to two integers.",
        "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "op": {"type": "string"},
                                                        "b": {"type": "integer"}},
                       "required": ["a", "op", "b"]},
    },
}
_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def tool_descriptions() -> list[str]:
    """The tools as the template writes them (``str(dict)``), stored as strings so an Arrow column holds
    them unchanged: a list of differently shaped dicts would be unified into one struct with null fields."""
    return [str(schema) for schema in TOOL_SCHEMAS.values()]


def city_population(world_seed_key: str, city: str) -> int:
    """A population for ``city`` (10,000 to 999,999) fixed by a keyed hash: the world itself has none."""
    return 10_000 + zlib.crc32(f"{world_seed_key}|population|{city}".encode()) % 990_000


def run_tool(world: World, call: ToolCall, key: str = "smolbook") -> str:
    """The JSON text of ``call``'s result, or ``{"error": "..."}`` naming what is wrong with the call."""
    def error(message: str) -> str:
        return json.dumps({"error": message})

    schema = TOOL_SCHEMAS.get(call.name)
    if schema is None:
        return error(f"unknown tool {call.name!r}; the tools are {', '.join(TOOL_SCHEMAS)}")
    expected = set(schema["parameters"]["properties"])
    if set(call.arguments) != expected:
        return error(f"{call.name} takes arguments {sorted(expected)}, got {sorted(call.arguments)}")
    args = call.arguments
    if call.name == "get_birthplace":
        person = next((p for p in world.people + world.heldout_people if p.name == args["person"]), None)
        if person is None:
            return error(f"no person named {args['person']!r}")
        return json.dumps({"person": person.name, "birthplace": person.city})
    if call.name == "get_city_info":
        city = next((c for c in world.cities if c.name == args["city"]), None)
        if city is None:
            return error(f"no city named {args['city']!r}")
        return json.dumps({"city": city.name, "country": city.country, "river": city.river, "founded": city.founded,
                           "population": city_population(key, city.name)})
    a, op, b = args["a"], args["op"], args["b"]
    if not (isinstance(a, int) and isinstance(b, int)) or op not in _OPS:
        return error("calculate needs integers a and b and op one of '+', '-', '*'")
    return json.dumps({"result": _OPS[op](a, b)})
