"""Ground truth for served predictions: one label per (model, request_id, image_index).

`record` is the row format, `feedback` and `label_studio` turn what arrives (the service's
`/feedback` body, a Label Studio JSON export) into records, `store` writes and reads them under
`<store>/<model>/date=YYYY-MM-DD/`, and `resolve` decides which label stands when several name the
same image (the last one received).
"""
