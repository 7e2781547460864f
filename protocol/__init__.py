"""What every Layermarket role shares: wire frames, signing, settings, errors and contract bindings.

``protocol`` is the bottom of the import graph: ``node``, ``market`` and ``client`` import it, and it
imports none of them. It never imports torch.
"""

__version__ = "0.1.0"
