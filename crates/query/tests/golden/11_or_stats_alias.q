(level:error OR level:fatal) | stats count() as n by service
