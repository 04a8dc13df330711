* | fields timestamp, message
