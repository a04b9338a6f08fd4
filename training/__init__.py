"""Training pipeline for the facial-expression model (FER2013 -> TFLite).

Only this package imports TensorFlow; the runtime (`fer`, `pi_agent`, the app) never does.
"""
