time* -service:db | stats count()
