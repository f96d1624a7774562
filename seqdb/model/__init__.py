"""The causal transformer, its exact parameter count and the budget grid."""
