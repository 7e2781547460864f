"""The developer's SDK (``market-client``): generate and chat over a route of bonded nodes, paying per
token with vouchers. Never imports ``node`` or torch.
"""
