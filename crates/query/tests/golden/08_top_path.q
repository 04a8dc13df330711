* | top 10 path
