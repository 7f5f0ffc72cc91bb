"""The recipe's weather service: a made-up report per city (no network)."""

import hashlib
import os

from flask import Flask, jsonify, request

app = Flask(__name__)
CONDITIONS = ["ensoleillé", "nuageux", "pluie", "averses", "neige"]


@app.route("/weather")
def weather():
    city = request.args.get("city", "")
    if not city:
        return jsonify({"error": "city is required"}), 400
    seed = int(hashlib.md5(city.lower().encode()).hexdigest(), 16)
    return jsonify({"city": city, "temperature": round(seed % 300 / 10 - 5, 1),
                    "condition": CONDITIONS[seed % len(CONDITIONS)], "source": "recipe"})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
