"""The system under test: a small simulated kernel (``kernel``) and the mm/ model (``mm``)."""
