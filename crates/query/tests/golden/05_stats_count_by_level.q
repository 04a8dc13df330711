* | stats count() by level
