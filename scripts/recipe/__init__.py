"""The course's recipe (TP5), as a student writes it: a baseline for scripts/bench-aggregator.

Three Flask apps on Werkzeug's development server, calling each other with `requests.get`,
no cache, no directory: `weather`, `jokes` and `aggregator` (`/fullinfo?city=`). Each reads
its port (and the aggregator its upstreams' URLs) from the environment. Flask and requests
are development dependencies only: nothing under apps/ uses them.
"""
