"""Everything that runs a model: the stage runtime, KV sessions, batching, the libp2p daemon
(``market-node``) and the validator's spot-check worker (``market-validator``).

Needs the ``layermarket[node]`` extra (torch, transformers).
"""
