"""`trackgate import-mlflow`: an MLflow installation (SQL database or ./mlruns) moved into trackgate.

detect.py recognises MLflow's stores; sql_source.py and file_source.py read them into rows shaped
like trackgate's tables (rows.py); writer.py writes them idempotently; run.py drives one import.
"""
