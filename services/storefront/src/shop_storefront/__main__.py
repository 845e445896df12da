from shop_storefront.main import serve

serve()
