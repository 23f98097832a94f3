"""The project's own two-level category tree (诉求分类) for a city 12345 hotline.

`manage.py import_categories` loads it when no file is given, and the demo seed uses it. The first seven
first-level names are the labels of the real citizen messages in ../shared/data (2020 Teddy Cup data), so
they must keep these exact spellings; the others cover what a 12345 hotline also receives (utilities,
public safety, civil affairs, market supervision, rural affairs, government services).
"""

from collections.abc import Iterable, Iterator

DEFAULT_CATEGORIES: list[tuple[str, list[str]]] = [
    (
        "城乡建设",
        [
            "物业管理",
            "房屋质量与维修",
            "违法建设",
            "市政设施",
            "市容环境卫生",
            "园林绿化",
            "建筑施工管理",
            "房产交易与不动产登记",
            "老旧小区改造",
            "住房公积金",
        ],
    ),
    (
        "劳动和社会保障",
        [
            "拖欠工资",
            "劳动合同与劳动关系",
            "养老保险",
            "工伤与失业保险",
            "就业创业",
            "职业技能培训",
            "退休待遇",
        ],
    ),
    (
        "教育文体",
        [
            "招生入学",
            "学校收费",
            "校外培训",
            "师德师风",
            "校园安全",
            "文化市场",
            "公共文化体育设施",
        ],
    ),
    (
        "商贸旅游",
        [
            "消费纠纷",
            "单用途预付卡",
            "旅游服务",
            "商业网点与农贸市场",
            "餐饮服务",
            "二手车与再生资源回收",
        ],
    ),
    (
        "卫生计生",
        [
            "医疗服务",
            "医德医风",
            "医疗保障",
            "公共卫生",
            "疫苗接种",
            "母婴保健与生育服务",
            "药品与医疗器械",
        ],
    ),
    (
        "环境保护",
        [
            "噪声污染",
            "大气污染",
            "餐饮油烟",
            "水污染",
            "固体废物",
            "生态保护",
        ],
    ),
    (
        "交通运输",
        [
            "公交",
            "地铁",
            "出租车与网约车",
            "道路交通管理",
            "停车管理",
            "道路与桥梁养护",
            "货运与物流",
        ],
    ),
    (
        "水电气暖",
        [
            "供水",
            "排水",
            "供电",
            "燃气",
            "供暖",
            "通信与网络",
        ],
    ),
    (
        "公共安全",
        [
            "社会治安",
            "消防安全",
            "电动自行车停放充电",
            "安全生产",
            "防汛与自然灾害",
            "犬只管理",
        ],
    ),
    (
        "民政与社会事务",
        [
            "养老服务",
            "最低生活保障与社会救助",
            "残疾人服务",
            "婚姻登记",
            "殡葬服务",
            "社区服务",
            "户籍与证件",
        ],
    ),
    (
        "市场监管",
        [
            "食品安全",
            "产品质量",
            "价格监督",
            "虚假广告",
            "无证无照经营",
            "电梯等特种设备",
        ],
    ),
    (
        "农业农村",
        [
            "农村土地承包",
            "惠农补贴",
            "农村基础设施",
            "动物防疫",
            "农资质量",
        ],
    ),
    (
        "政务服务",
        [
            "办事效率",
            "证照办理",
            "政策咨询",
            "营商环境",
            "工作人员作风",
            "政府信息公开",
        ],
    ),
    (
        "其他",
        [
            "表扬感谢",
            "意见建议",
            "非政府职能",
            "其他诉求",
        ],
    ),
]


def category_pairs(tree: Iterable[tuple[str, Iterable[str]]] = DEFAULT_CATEGORIES) -> Iterator[tuple[str, str | None]]:
    """(first level, second level) pairs in tree order, the shape `directory.category_import` takes."""
    for first, children in tree:
        yield first, None
        for second in children:
            yield first, second
