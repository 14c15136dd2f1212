"""Reading Prometheus' text exposition, as a scraper would."""

from __future__ import annotations


def sample(text: str, name: str, **labels: str) -> float:
    """Return one sample's value from the exposition text (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        metric, _, value = line.rpartition(" ")
        found_name, _, found_labels = metric.partition("{")
        found = ",".join(sorted(found_labels.rstrip("}").split(","))) if found_labels else ""
        if found_name == name and found == want:
            return float(value)
    return 0.0
