"""Raspberry Pi agent: camera -> face -> TFLite emotion model -> timestamped probabilities -> database.

`python -m pi_agent run` records while a session is live for this device; `python -m pi_agent analyze VIDEO --csv OUT`
analyses a recorded video. See docs/raspberry-pi.md.
"""
