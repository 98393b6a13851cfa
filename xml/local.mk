# xml
