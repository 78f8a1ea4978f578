"""Small helpers shared by the models, tables and tools."""


def check_choice(name: str, value, choices) -> None:
    """Raise a ValueError naming ``value`` and the valid ``choices``."""
    if value not in choices:
        raise ValueError(f'unknown {name} {value!r}; valid choices: {", ".join(map(str, choices))}')
