"""Segmentation: from a CRM export to re-activation batches (`volley segment`).

``rules`` parses the rules file, ``customers`` reads the CSV, ``job`` runs the
pass and enqueues one batch per segment through the store's producer API,
``report`` prints what happened (or would), ``sample`` generates fake bases.
"""
