"""One module per family of Keras whose BatchNormalization works alike."""
