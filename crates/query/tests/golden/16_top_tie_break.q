level:error | top 5 service
