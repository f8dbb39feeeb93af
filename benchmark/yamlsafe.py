"""YAML from outside the harness: yaml.safe_load without its two surprises.

A mapping that names a key twice keeps the last value silently, and an alias (`*x`) repeats what
an anchor (`&x`) names, so a few lines can expand into billions of values ("billion laughs").
`load_yaml_text` refuses both — duplicate keys with the key and both lines, anchors and aliases
as soon as the first one is read — and every other problem, as a one-line YamlError.
"""
from __future__ import annotations

import yaml

from .text import plain


class YamlError(ValueError):
    """YAML that cannot be accepted; the message is one line: where, what, and the fix."""


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys, anchors and aliases."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise YamlError(f"anchors and aliases (&name, *name) are not accepted (line {event.start_mark.line + 1}); "
                            f"write the value out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        lines: dict = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # a list or mapping as key: the constructor refuses it as unhashable
            key, line = self.construct_object(key_node, deep=deep), key_node.start_mark.line + 1
            if key in lines:
                raise YamlError(f"key '{plain(key, 40)}' appears twice (lines {lines[key]} and {line}); keep one")
            lines[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str, where: str) -> object:
    """The value of a YAML document; anything unacceptable raises YamlError naming `where`."""
    try:
        return yaml.load(text, Loader=StrictLoader)
    except YamlError as exc:
        raise YamlError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = plain(getattr(exc, "problem", None) or "syntax error", 100)
        raise YamlError(f"{where}: invalid YAML{at} ({problem}); fix the syntax") from None
    except (ValueError, TypeError, AttributeError, RecursionError, OverflowError) as exc:
        # valid YAML syntax, impossible value: a date like 2024-02-30, `!!float abc`, deep nesting
        raise YamlError(f"{where}: a value YAML cannot read ({type(exc).__name__}: {plain(exc, 80)}); "
                        f"quote it as text") from None
