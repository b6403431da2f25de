"""The resident engine: one background ``qtts`` process per user and home that keeps models
loaded, so that every CLI call after the first speaks at once (ollama's client/server split).

- ``place``: where it lives (a 0700 directory, a 0600 Unix socket; no TCP port) and what
  must match for a CLI to use it (the qtts build and the load-time settings).
- ``wire``: the framing of a call's answer (progress, audio, the summary or the error).
- ``launch``: find the engine, or start it; replace one that is stale or differs.
- ``calls``: the CLI's side (speak, stream, clone), with the same results and errors as
  the in-process path.
- ``process``: the engine process itself: the HTTP app (``server``) on the socket, with
  the engine routes, and its idle exit.
"""
