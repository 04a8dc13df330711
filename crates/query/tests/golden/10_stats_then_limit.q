* | stats count() by level | limit 2
