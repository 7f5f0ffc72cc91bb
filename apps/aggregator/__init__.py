"""The aggregator: weather and a joke in one answer, cached in Redis, resilient to failures."""
