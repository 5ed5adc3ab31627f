"""Griffe extension: renders Keras-style docstring examples as code.

keras_darn's docstrings follow Keras: an `Example:` line, a blank line, then
either a fenced code block or doctest lines (`>>> ...` and their output).
Markdown would read the doctest lines as nested block quotes; this extension
wraps every run of them in a fenced `pycon` block before the docstring is
parsed, and turns a lone `Example:` line into a bold paragraph. The
docstrings themselves stay plain doctest text.
"""

import griffe


def fence_doctests(text):
    """`text` with each run of doctest lines (prompt, continuation, output) fenced."""
    lines = text.split("\n")
    out = []
    fenced = False
    in_doctest = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("```"):
            fenced = not fenced
        if not fenced and stripped.startswith(">>>") and not in_doctest:
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}```pycon")
            in_doctest = True
        elif in_doctest and not stripped:
            out.append(f"{indent}```")
            in_doctest = False
        if not fenced and not in_doctest and stripped in ("Example:", "Examples:"):
            line = line.replace(stripped, f"**{stripped}**")
        out.append(line)
    if in_doctest:
        out.append(f"{indent}```")
    return "\n".join(out)


class FenceDoctests(griffe.Extension):
    """Fences the doctest lines of every docstring (see the module docstring)."""

    def on_instance(self, *, node, obj, agent, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
