"""Reading a Prometheus text exposition in tests: one sample's value by metric name and labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample `name` (as exposed, e.g. `x_total`, `x_count`) whose labels include `labels`;
    None when there is none."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and labels.items() <= found.labels.items():
                return float(found.value)
    return None


def families(text: str) -> set[str]:
    """The metric names the exposition declares (with HELP/TYPE), even those without samples yet."""
    return {family.name for family in text_string_to_metric_families(text)}
