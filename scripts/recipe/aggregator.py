"""The recipe's aggregator: `/fullinfo?city=` calls weather, then jokes, and answers both."""

import os

import requests
from flask import Flask, jsonify, request

app = Flask(__name__)
WEATHER_URL = os.environ["WEATHER_URL"]
JOKES_URL = os.environ["JOKES_URL"]


@app.route("/fullinfo")
def fullinfo():
    city = request.args.get("city", "")
    weather = requests.get(f"{WEATHER_URL}/weather", params={"city": city}, timeout=5).json()
    joke = requests.get(f"{JOKES_URL}/joke", timeout=5).json()
    return jsonify({"city": city, "weather": weather, "joke": joke["joke"]})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
