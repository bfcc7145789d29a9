"""train step: a Keras DNN regressor on the transform's features, evaluated against the
persistence baseline on the test split and exported as a TF-Serving SavedModel."""
