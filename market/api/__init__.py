"""HTTP routers of the market, one module per resource."""
