"""The fashion classifier: an EfficientNetB0 backbone, a 32-d ``embedding`` layer and a softmax head.

``model`` builds the network, ``data`` reads the datasets, ``training`` fits and saves, ``storage`` keeps
``models/<name>/``, ``inference`` classifies and embeds, ``report`` scores a model.
"""
