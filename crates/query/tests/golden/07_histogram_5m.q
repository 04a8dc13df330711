* | histogram 5m
