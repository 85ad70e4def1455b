"""Autopilot: the experiment workflow acting on its own results (issue 16).

`rules` reads and checks `scheduling_config.autopilot`; `decide` turns the always-valid statistics
of the rules' metrics into one decision with its evidence. Pure: the workflow's activity loads
the data, the workflow applies the decision through the same path as REST.
"""
