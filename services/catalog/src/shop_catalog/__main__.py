from shop_catalog.main import serve

serve()
