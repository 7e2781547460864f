"""A local Layermarket network for development, tests and demos (CLI ``market-devnet``).

It lives beside the node runtime because building test models needs torch and transformers.
"""
