"""The Chinese vocabulary of prompts (Simplified; Traditional text is converted before it is
read): numerals and measure words, colour, size, region, relation, scene and style words, and
the words that are never objects. Values are the names the English vocabulary uses ("red",
"top left", "above"), so every engine reads one set of names whatever the prompt's language.
Data only, standard library only (the built-in model imports the vocabulary)."""

from __future__ import annotations

import re

HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # CJK ideographs (with extension A, compatibility)
HAN_RE = re.compile(f"[{HAN}]")

DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
          "八": 8, "九": 9, "壹": 1, "贰": 2, "叁": 3, "肆": 4, "伍": 5, "陆": 6, "柒": 7, "捌": 8, "玖": 9}
UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000}
NUMERAL = r"[0-9０-９]{1,3}|[零〇一二两三四五六七八九十百千壹贰叁肆伍陆柒捌玖拾佰]{1,6}"
# Quantity words with no measure word after them -> the count the English words mean.
QUANTITIES = {"一些": 3, "有些": 3, "若干": 3, "许多": 5, "很多": 5, "好多": 5, "不少": 5,
              "大量": 5, "众多": 5, "无数": 5, "一打": 12, "俩": 2, "仨": 3}
FEW = "几数"  # 几只 / 数只: a few (3); only before a measure word (数学 is not a number)
# Measure words (classifiers). 双 / 对: a pair, so "一双鞋" is two shoes ("a pair of shoes": 2).
MEASURES = (
    "个 只 头 匹 条 张 把 辆 架 艘 棵 株 朵 本 支 枝 根 块 片 颗 粒 座 栋 幢 间 件 副 杯 碗 盘 碟 瓶 盒 袋 包 "
    "群 位 名 口 台 部 顶 面 盏 幅 封 串 束 堆 层 扇 尾 道 轮 弯 盆 份 笼 箱 罐 桶 套 枚 滴 排 行 列 队 窝 篮 筐 "
    "捆 叠 锅 壶 节 段 尊 具 叶 款 种 双 对"
).split()
PAIR_MEASURES = {"双": "只", "对": "个"}  # the measure word of one of the two
DEFINITE = ("这", "那", "该", "此")
# The measure word a noun takes when the prompt names none ("猫和狗" -> "一只猫"), by the noun's end.
DEFAULT_MEASURES = {
    **dict.fromkeys(("猫", "狗", "鸟", "鸡", "鸭", "鹅", "兔", "虎", "狮", "熊", "猴", "象", "羊", "鼠", "狐狸",
                     "狼", "鹿", "熊猫", "企鹅", "蝴蝶", "蜜蜂", "青蛙", "乌龟", "鹰", "鸽", "雀", "猪", "蛙", "蟹",
                     "虾", "鞋", "手套", "袜子", "耳朵", "眼睛", "手"), "只"),
    **dict.fromkeys(("鱼", "蛇", "龙", "河", "路", "街", "裙子", "裤子", "围巾", "领带", "毛巾"), "条"),
    **dict.fromkeys(("马", "骆驼", "斑马"), "匹"),
    **dict.fromkeys(("牛", "猪"), "头"),
    **dict.fromkeys(("车", "出租车", "自行车", "摩托车", "卡车", "汽车", "公交车", "火车"), "辆"),
    **dict.fromkeys(("花", "玫瑰", "云"), "朵"),
    **dict.fromkeys(("树", "草", "仙人掌"), "棵"),
    **dict.fromkeys(("船", "舰"), "艘"),
    **dict.fromkeys(("飞机", "钢琴"), "架"),
    **dict.fromkeys(("书", "杂志", "笔记本"), "本"),
    **dict.fromkeys(("纸", "卡片", "照片", "桌子", "床", "脸", "嘴", "票", "地图", "桌"), "张"),
    **dict.fromkeys(("笔", "铅笔", "枪", "蜡烛", "牙刷", "火箭"), "支"),
    **dict.fromkeys(("伞", "椅子", "刀", "剪刀", "钥匙", "吉他", "锁", "扇子"), "把"),
    **dict.fromkeys(("房子", "楼", "山", "桥", "城堡", "塔", "雕像", "城市", "岛", "教堂", "灯塔", "寺庙"), "座"),
    **dict.fromkeys(("星", "星星", "心", "珍珠", "钻石", "糖", "牙", "葡萄", "草莓", "樱桃", "豆"), "颗"),
    **dict.fromkeys(("月亮", "月", "太阳"), "轮"),
    **dict.fromkeys(("画", "油画", "图"), "幅"),
    **dict.fromkeys(("衣服", "衬衫", "外套", "毛衣", "T恤", "裙", "礼物", "事"), "件"),
    **dict.fromkeys(("帽子", "帐篷", "头盔", "皇冠"), "顶"),
    **dict.fromkeys(("灯", "台灯", "路灯", "灯笼"), "盏"),
    **dict.fromkeys(("旗", "旗子", "镜子", "墙", "鼓"), "面"),
    **dict.fromkeys(("门", "窗户", "窗"), "扇"),
    **dict.fromkeys(("电脑", "电视", "相机", "机器人", "冰箱", "手机"), "台"),
    **dict.fromkeys(("香蕉", "黄瓜", "胡萝卜", "骨头", "绳子", "羽毛", "柱子"), "根"),
    **dict.fromkeys(("面包", "蛋糕", "石头", "手表", "披萨", "巧克力", "西瓜"), "块"),
    **dict.fromkeys(("叶子", "树叶", "雪花", "面包片"), "片"),
    **dict.fromkeys(("人", "女孩", "男孩", "孩子", "老人", "医生", "老师", "宇航员", "厨师", "女人", "男人",
                     "警察", "学生", "士兵", "公主", "王子", "女士", "先生"), "个"),
}

# Colour words -> the English colour name; "X色" and "X色的" are read too.
COLOURS = {
    "红": "red", "大红": "red", "鲜红": "red", "橙": "orange", "橘": "orange", "橘黄": "orange",
    "橙黄": "orange", "黄": "yellow", "金黄": "golden", "绿": "green", "翠绿": "green", "蓝": "blue",
    "天蓝": "blue", "紫": "purple", "粉": "pink", "粉红": "pink", "棕": "brown", "褐": "brown",
    "咖啡": "brown", "黑": "black", "白": "white", "雪白": "white", "灰": "gray", "金": "gold",
    "银": "silver", "青": "cyan", "蓝绿": "teal", "绿松石": "turquoise", "藏青": "navy", "海军蓝": "navy",
    "紫罗兰": "violet", "洋红": "magenta", "品红": "magenta", "米": "beige", "米黄": "beige",
    "栗": "maroon", "酒红": "maroon", "绯红": "crimson", "深红": "crimson", "青柠": "lime",
    "靛蓝": "indigo", "靛": "indigo", "黑白": "black and white",
}
NOUN_COLOURS = {"咖啡", "米", "栗", "橘", "橙", "紫罗兰", "绿松石", "青柠", "金", "银", "青"}  # colours only with 色
# Single colour characters that may sit on a noun ("白猫": a white cat), except in the nouns
# that are words of their own (a 白菜 is a cabbage, not a white 菜).
COLOUR_PREFIXES = "红橙黄绿蓝紫粉棕黑白灰金银"
LEXICAL = set(
    "白菜 黄瓜 红薯 紫薯 蓝莓 黑莓 橙子 橙汁 黄油 红茶 黑客 黑洞 白宫 绿洲 黄河 红绿灯 金字塔 黄金 白银 紫菜 棕榈 "
    "黑板 白板 红包 金毛 金毛犬 黄牛 金刚 白领 蓝领 黑人 白人 金属 银行 灰尘 白天 黑夜 黄昏 粉笔 粉丝 白昼 黑暗 "
    "金枪鱼 银杏 银河 金星 白露 青蛙 青菜 青椒 黑猩猩 金丝猴 白蚁 黄蜂 黄鼠狼 白兰地 金桔 金针菇 黄花菜 紫罗兰 "
    "红领巾 白大褂 金鱼 白雪公主 红娘 绿帽 白酒 黄豆 红豆 绿豆 黑豆 红枣 白糖 红糖 黑胡椒 白鹭 黄鹂 红灯笼 "
    "金子 银子 绿茶 白茶 黄茶 黑茶 红烧肉 白米饭 白粥 黑芝麻 白芝麻 金针 银耳 黑木耳 白鲸 蓝鲸".split()
)
SHADES = {"浅": "light", "淡": "light", "深": "dark", "暗": "dark", "亮": "bright"}
COLOUR_NAMES_ZH = {  # English colour name -> how a Chinese revised prompt says it
    "red": "红色", "orange": "橙色", "yellow": "黄色", "green": "绿色", "blue": "蓝色", "purple": "紫色",
    "pink": "粉色", "brown": "棕色", "black": "黑色", "white": "白色", "gray": "灰色", "gold": "金色",
    "golden": "金黄色", "silver": "银色", "cyan": "青色", "teal": "蓝绿色", "turquoise": "绿松石色",
    "navy": "藏青色", "violet": "紫罗兰色", "magenta": "洋红色", "beige": "米色", "maroon": "栗色",
    "crimson": "绯红色", "lime": "青柠色", "indigo": "靛蓝色", "black and white": "黑白",
    "light": "浅", "dark": "深", "bright": "亮", "and": "和", "gradient": "渐变",
}
SIZES = {"大": "big", "巨大": "big", "大大": "big", "庞大": "big", "巨型": "big", "硕大": "big",
         "小": "small", "小小": "small", "微小": "small", "迷你": "small", "袖珍": "small", "细小": "small"}

# Regions -> a REGIONS key. Longer words first when matched.
REGION_WORDS = {
    **{f"左上{s}": "top left" for s in ("角", "方", "部", "")},
    **{f"右上{s}": "top right" for s in ("角", "方", "部", "")},
    **{f"左下{s}": "bottom left" for s in ("角", "方", "部", "")},
    **{f"右下{s}": "bottom right" for s in ("角", "方", "部", "")},
    **{w: "left" for w in ("左边", "左侧", "左面", "左方", "左部", "左半边", "左半部分", "左半部", "最左边", "左手边")},
    **{w: "right" for w in ("右边", "右侧", "右面", "右方", "右部", "右半边", "右半部分", "右半部", "最右边", "右手边")},
    **{w: "top" for w in ("上方", "上面", "上边", "顶部", "上部", "上半部分", "上半部", "顶端", "最上面", "最上方",
                          "上端")},
    **{w: "bottom" for w in ("下方", "下面", "下边", "底部", "下部", "下半部分", "下半部", "底端", "最下面", "最下方",
                             "下端")},
    **{w: "center" for w in ("正中间", "正中央", "正中心", "中间", "中央", "正中", "中心", "中部")},
}
CANVAS = r"(?:整个)?(?:画面|图片|图像|图画|画布|图中|画中|图里|画里|图|画)"
PLACE_VERBS = r"(?:位于|处于|置于|放在|摆在|画在|在)"

# Relations: "A 在 B 的 上面" -> A above B. Values are RELATION_KIND values.
RELATION_WORDS = {
    "上面": "above", "上方": "above", "之上": "above", "上边": "above", "顶上": "above", "头顶": "above",
    "下面": "below", "下方": "below", "之下": "below", "下边": "below", "底下": "below",
    "左边": "left of", "左侧": "left of", "左面": "left of", "右边": "right of", "右侧": "right of",
    "右面": "right of", "旁边": "next to", "边上": "next to", "身边": "next to", "附近": "next to",
    "身旁": "next to", "前面": "in front of", "前方": "in front of", "跟前": "in front of",
    "后面": "behind", "后方": "behind", "身后": "behind", "背后": "behind",
}
RELATION_ZH = {"above": "上方", "below": "下方", "left of": "左边", "right of": "右边", "next to": "旁边",
               "in front of": "前面", "behind": "后面"}

# Scene words (whole jieba words) -> the TIMES / WEATHER / GROUNDS values of the English vocabulary.
TIMES = {"黎明": "dawn", "日出": "dawn", "破晓": "dawn", "清晨": "morning", "早晨": "morning", "早上": "morning",
         "上午": "morning", "中午": "day", "正午": "day", "下午": "day", "白天": "day", "白昼": "day",
         "日落": "dusk", "黄昏": "dusk", "傍晚": "dusk", "夕阳": "dusk", "晚霞": "dusk", "落日": "dusk",
         "夜晚": "night", "晚上": "night", "夜里": "night", "夜间": "night", "深夜": "night", "午夜": "night",
         "夜空": "night", "星空": "night", "月光": "night", "月夜": "night", "夜色": "night", "黑夜": "night",
         "夜景": "night"}
WEATHER = {"雨": "rain", "下雨": "rain", "雨天": "rain", "小雨": "rain", "大雨": "rain", "细雨": "rain",
           "雨中": "rain", "暴风雨": "storm", "雷雨": "storm", "雷暴": "storm", "暴雨": "storm", "风暴": "storm",
           "雪": "snow", "下雪": "snow", "雪天": "snow", "大雪": "snow", "雪中": "snow", "冬天": "snow",
           "冬日": "snow", "暴风雪": "snow", "雾": "fog", "大雾": "fog", "雾气": "fog", "薄雾": "fog", "雾中": "fog",
           "多云": "cloud", "阴天": "cloud", "晴天": "sun", "阳光": "sun", "晴朗": "sun", "夏天": "sun",
           "夏日": "sun", "阳光明媚": "sun"}
GROUNDS = {"森林": "forest", "树林": "forest", "丛林": "forest", "林中": "forest", "草地": "grass",
           "草坪": "grass", "草原": "grass", "公园": "grass", "花园": "grass", "田野": "grass", "农场": "grass",
           "田园": "grass", "乡村": "grass", "山坡": "grass", "牧场": "grass", "草丛": "grass", "海滩": "sand",
           "沙滩": "sand", "沙漠": "sand", "雪地": "snow", "冰面": "snow", "雪山": "snow", "海": "water",
           "大海": "water", "海洋": "water", "海边": "water", "海面": "water", "湖": "water", "湖面": "water",
           "湖边": "water", "河": "water", "河边": "water", "池塘": "water", "沼泽": "water", "城市": "street",
           "街道": "street", "街头": "street", "马路": "street", "公路": "street", "街上": "street",
           "市中心": "street", "跑道": "street"}

# Style words, written as they are (the revised prompt adds 风格 to those that need it).
STYLE_WORDS = (
    "水彩画 水彩 油画 丙烯画 像素画 像素风 像素艺术 像素 线稿 铅笔素描 炭笔素描 素描 卡通 动漫 二次元 日漫 漫画 "
    "水墨画 水墨 国画 中国画 工笔画 工笔 照片级 写实 超写实 3D渲染 三维渲染 扁平插画 扁平 矢量插画 矢量 低多边形 等距 "
    "浮世绘 新艺术运动 装饰艺术 黏土 粘土 定格动画 折纸 剪纸 彩色玻璃 极简 极简主义 印象派 立体主义 超现实主义 "
    "超现实 波普艺术 儿童绘本 绘本 赛博朋克 蒸汽朋克 蒸汽波 复古 蜡笔画 彩铅 版画 涂鸦 中国风 古风 吉卜力 皮克斯 "
    "迪士尼 哥特 巴洛克 洛可可 霓虹"
).split()
STYLE_SUFFIX = r"(?:的)?(?:风格|画风|艺术风格)"  # removed from the style name
STYLE_SELF_NAMED = ("画", "风", "艺术", "插画", "渲染", "素描", "摄影", "主义", "派", "绘", "线稿", "剪纸", "折纸")

# Clauses and words that are not objects.
QUALITY = re.compile(
    r"^(?:高清|超清|高质量|最佳质量|最高质量|杰作|大师作品|细节丰富|细节清晰|极致细节|高细节|精细|精致|高分辨率|"
    r"电影感|电影级|电影质感|柔和光线|柔光|光影|逼真|唯美|精美|清晰|锐利|专业|获奖作品|[48]k|[48]K|超高清|"
    r"高画质|好看|漂亮|美丽|生动|色彩鲜艳|色彩丰富|景深|虚化|背景虚化|广角|特写|近景|远景|全景)$")
META_NOUNS = {"画面", "图片", "图像", "照片", "图", "画", "风格", "背景", "颜色", "色彩", "质量", "细节", "光线",
              "构图", "画质", "分辨率", "比例", "效果", "元素", "物体", "东西", "场景", "内容", "主题", "氛围", "画风",
              "插画", "海报", "图标"}
# A clause whose first word is one of these is not something to draw (whole words: 无人机, 别墅 are things).
NEGATIONS = {"没有", "没", "不要", "不能", "不可", "不得", "不含", "不带", "不", "无", "别", "禁止", "避免", "勿", "去掉",
             "不用", "切勿", "请勿"}
CONJUNCTIONS = {"和", "与", "跟", "以及", "及", "还有", "并且", "同", "加上"}
# Aspect particles and verbs that end a noun phrase although jieba tags the word a noun ("骑着马").
VERB_MARKS = ("着", "著", "了", "过")
# One-character verbs jieba may tag as nouns ("火箭飞向太空": 飞 a noun): they end a noun phrase.
VERB_CHARS = set("飞跑走游跳坐站躺趴吃喝看玩睡爬骑开唱跳笑哭追抱拿")
PREPOSITIONS = "向往朝在从到于"  # "向太空" tagged a name: a place phrase, not a noun
