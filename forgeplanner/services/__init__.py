"""What several front ends need, below all of them: the recommendation search, cluster and K3s
platform layouts, price observations and models by id. Typed requests in (frozen dataclasses),
domain values and engine results out. The command line parses flags into these requests and
prints; the desktop app binds widgets to them; plans call them for their figures.

Modules: `recommend`, `cluster`, `platform`, `prices`, `models`, and `datacache` (the validated
catalog and model database kept between runs, installed by the front ends). Heavy imports stay
inside the functions, so importing a service is cheap.
"""
