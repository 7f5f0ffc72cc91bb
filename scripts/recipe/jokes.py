"""The recipe's jokes service: a joke at random from a list in memory."""

import os
import random

from flask import Flask, jsonify

app = Flask(__name__)
JOKES = [
    "Que dit un canard quand il va aux toilettes ? Coin-coin !",
    "Pourquoi les canards ont-ils des plumes ? Pour couvrir leur derrière.",
    "Quel est le comble pour un canard ? D'avoir un froid de canard.",
]


@app.route("/joke")
def joke():
    return jsonify({"id": random.randrange(len(JOKES)), "joke": random.choice(JOKES)})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
