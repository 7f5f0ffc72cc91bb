"""The weather service: current weather of a city, from a synthetic or a real provider."""
