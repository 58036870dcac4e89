"""The pretrained weights of ResNet, ResNeXt and Wide ResNet: every torchvision weights enum member and
every timm tag of these architectures, with their preprocessing, metrics and files.

Class names are not listed here: the core reads ImageNet-1k's from torchvision's
metadata when it converts a file. The plugin's tests check every field against
torchvision's and timm's own metadata.
"""

from registry_core import DataConfig, timm_tag, torchvision_tag

TV = DataConfig()  # torchvision's V1 recipe: resize 256, crop 224, bilinear
TV2 = DataConfig(input_size=(3, 176, 176), test_input_size=(3, 224, 224), test_crop_pct=0.965)  # torchvision's V2 recipe: trained at 176, evaluated at resize 232, crop 224
TV2_EVAL = DataConfig(crop_pct=0.965)  # evaluated at resize 232, crop 224 (torchvision's later V1 weights)
RSB = DataConfig(test_input_size=(3, 288, 288), crop_pct=0.95, test_crop_pct=1.0, interpolation="bicubic")  # timm's ResNet Strikes Back recipes: trained at 224, evaluated at 288 uncropped, bicubic
RSB_176 = DataConfig(input_size=(3, 176, 176), test_input_size=(3, 224, 224), crop_pct=0.9, test_crop_pct=1.0, interpolation="bicubic")  # trained at 176, evaluated at 224 uncropped
RSB_160 = DataConfig(input_size=(3, 160, 160), test_input_size=(3, 224, 224), crop_pct=0.95, test_crop_pct=0.95, interpolation="bicubic")  # the short A3 recipe: trained at 160, evaluated at 224
RA = DataConfig(test_input_size=(3, 288, 288), test_crop_pct=0.95, interpolation="bicubic")  # RandAugment recipes: evaluated at 288, crop 0.95
BICUBIC = DataConfig(interpolation="bicubic")  # resize 256, crop 224, bicubic
FULL_BICUBIC = DataConfig(crop_pct=1.0, interpolation="bicubic")  # 224 uncropped, bicubic
RA4 = DataConfig(test_input_size=(3, 288, 288), crop_pct=0.9, test_crop_pct=1.0, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))  # inputs scaled to [-1, 1]; evaluated at 288 uncropped

WEIGHTS = (
    torchvision_tag("resnet18", "tv_in1k", "IMAGENET1K_V1", "resnet18-f37072fd.pth", data=TV, top1=69.758, top5=89.078, timm_file="resnet18-f37072fd.pth", default=True),
    timm_tag("resnet18", "a1_in1k", data=RSB, file="resnet18_a1_0-d63eafa0.pth"),
    timm_tag("resnet18", "a2_in1k", data=RSB, file="resnet18_a2_0-b61bd467.pth"),
    timm_tag("resnet18", "a3_in1k", data=RSB_160, file="resnet18_a3_0-40c531c8.pth"),
    timm_tag("resnet18", "fb_ssl_yfcc100m_ft_in1k", data=TV, file="semi_supervised_resnet18-d92f0530.pth", license="cc-by-nc-4.0"),
    timm_tag("resnet18", "fb_swsl_ig1b_ft_in1k", data=TV, file="semi_weakly_supervised_resnet18-118f1556.pth", license="cc-by-nc-4.0"),
    timm_tag("resnet18", "gluon_in1k", data=BICUBIC, file="gluon_resnet18_v1b-0757602b.pth"),
    torchvision_tag("resnet34", "tv_in1k", "IMAGENET1K_V1", "resnet34-b627a593.pth", data=TV, top1=73.314, top5=91.42, timm_file="resnet34-b627a593.pth", default=True),
    timm_tag("resnet34", "a1_in1k", data=RSB, file="resnet34_a1_0-46f8f793.pth"),
    timm_tag("resnet34", "a2_in1k", data=RSB, file="resnet34_a2_0-82d47d71.pth"),
    timm_tag("resnet34", "a3_in1k", data=RSB_160, file="resnet34_a3_0-a20cabb6.pth"),
    timm_tag("resnet34", "bt_in1k", data=RA, file="resnet34-43635321.pth"),
    timm_tag("resnet34", "gluon_in1k", data=BICUBIC, file="gluon_resnet34_v1b-c6d82d59.pth"),
    timm_tag("resnet34", "ra4_e3600_r224_in1k", data=RA4),
    torchvision_tag("resnet50", "tv_in1k", "IMAGENET1K_V1", "resnet50-0676ba61.pth", data=TV, top1=76.13, top5=92.862, timm_file="resnet50-0676ba61.pth"),
    torchvision_tag("resnet50", "tv2_in1k", "IMAGENET1K_V2", "resnet50-11ad3fa6.pth", data=TV2, top1=80.858, top5=95.434, timm_file="resnet50-11ad3fa6.pth", default=True),
    timm_tag("resnet50", "a1_in1k", data=RSB, file="resnet50_a1_0-14fe96d1.pth"),
    timm_tag("resnet50", "a1h_in1k", data=RSB_176, file="resnet50_a1h2_176-001a1197.pth"),
    timm_tag("resnet50", "a2_in1k", data=RSB, file="resnet50_a2_0-a2746f79.pth"),
    timm_tag("resnet50", "a3_in1k", data=RSB_160, file="resnet50_a3_0-59cae1ef.pth"),
    timm_tag("resnet50", "am_in1k", data=BICUBIC, file="resnet50_am-6c502b37.pth"),
    timm_tag("resnet50", "b1k_in1k", data=RSB, file="resnet50_b1k-532a802a.pth"),
    timm_tag("resnet50", "b2k_in1k", data=RSB, file="resnet50_b2k-1ba180c1.pth"),
    timm_tag("resnet50", "bamboo", data=FULL_BICUBIC, license="", num_classes=0, labels=None),
    timm_tag("resnet50", "bt_in1k", data=RA, file="rw_resnet50-86acaeed.pth"),
    timm_tag("resnet50", "c1_in1k", data=RSB, file="resnet50_c1-5ba5e060.pth"),
    timm_tag("resnet50", "c2_in1k", data=RSB, file="resnet50_c2-d01e05b2.pth"),
    timm_tag("resnet50", "d_in1k", data=RSB, file="resnet50_d-f39db8af.pth"),
    timm_tag("resnet50", "fb_ssl_yfcc100m_ft_in1k", data=TV, file="semi_supervised_resnet50-08389792.pth", license="cc-by-nc-4.0"),
    timm_tag("resnet50", "fb_swsl_ig1b_ft_in1k", data=TV, file="semi_weakly_supervised_resnet50-16a12f1b.pth", license="cc-by-nc-4.0"),
    timm_tag("resnet50", "gluon_in1k", data=BICUBIC, file="gluon_resnet50_v1b-0ebe02e2.pth"),
    timm_tag("resnet50", "ra_in1k", data=RA, file="resnet50_ra-85ebb6e5.pth"),
    timm_tag("resnet50", "ram_in1k", data=RA, file="resnet50_ram-a26f946b.pth"),
    torchvision_tag("resnet101", "tv_in1k", "IMAGENET1K_V1", "resnet101-63fe2227.pth", data=TV, top1=77.374, top5=93.546, timm_file="resnet101-63fe2227.pth"),
    torchvision_tag("resnet101", "tv2_in1k", "IMAGENET1K_V2", "resnet101-cd907fc2.pth", data=TV2, top1=81.886, top5=95.78, timm_file="resnet101-cd907fc2.pth", default=True),
    timm_tag("resnet101", "a1_in1k", data=RSB, file="resnet101_a1_0-cdcb52a9.pth"),
    timm_tag("resnet101", "a1h_in1k", data=RSB, file="resnet101_a1h-36d3f2aa.pth"),
    timm_tag("resnet101", "a2_in1k", data=RSB, file="resnet101_a2_0-6edb36c7.pth"),
    timm_tag("resnet101", "a3_in1k", data=RSB_160, file="resnet101_a3_0-1db14157.pth"),
    timm_tag("resnet101", "gluon_in1k", data=BICUBIC, file="gluon_resnet101_v1b-3b017079.pth"),
    torchvision_tag("resnet152", "tv_in1k", "IMAGENET1K_V1", "resnet152-394f9c45.pth", data=TV, top1=78.312, top5=94.046, timm_file="resnet152-394f9c45.pth"),
    torchvision_tag("resnet152", "tv2_in1k", "IMAGENET1K_V2", "resnet152-f82ba261.pth", data=TV2, top1=82.284, top5=96.002, timm_file="resnet152-f82ba261.pth", default=True),
    timm_tag("resnet152", "a1_in1k", data=RSB, file="resnet152_a1_0-2eee8a7a.pth"),
    timm_tag("resnet152", "a1h_in1k", data=RSB, file="resnet152_a1h-dc400468.pth"),
    timm_tag("resnet152", "a2_in1k", data=RSB, file="resnet152_a2_0-b4c6978f.pth"),
    timm_tag("resnet152", "a3_in1k", data=RSB_160, file="resnet152_a3_0-134d4688.pth"),
    timm_tag("resnet152", "gluon_in1k", data=BICUBIC, file="gluon_resnet152_v1b-c1edb0dd.pth"),
    torchvision_tag("resnext50_32x4d", "tv_in1k", "IMAGENET1K_V1", "resnext50_32x4d-7cdf4587.pth", data=TV, top1=77.618, top5=93.698, timm_file="resnext50_32x4d-7cdf4587.pth"),
    torchvision_tag("resnext50_32x4d", "tv2_in1k", "IMAGENET1K_V2", "resnext50_32x4d-1a0047aa.pth", data=TV2, top1=81.198, top5=95.34, timm_file="resnext50_32x4d-1a0047aa.pth", default=True),
    timm_tag("resnext50_32x4d", "a1_in1k", data=RSB, file="resnext50_32x4d_a1_0-b5a91a1d.pth"),
    timm_tag("resnext50_32x4d", "a1h_in1k", data=RSB, file="resnext50_32x4d_a1h-0146ab0a.pth"),
    timm_tag("resnext50_32x4d", "a2_in1k", data=RSB, file="resnext50_32x4d_a2_0-efc76add.pth"),
    timm_tag("resnext50_32x4d", "a3_in1k", data=RSB_160, file="resnext50_32x4d_a3_0-3e450271.pth"),
    timm_tag("resnext50_32x4d", "fb_ssl_yfcc100m_ft_in1k", data=TV, file="semi_supervised_resnext50_32x4-ddb3e555.pth", license="cc-by-nc-4.0"),
    timm_tag("resnext50_32x4d", "fb_swsl_ig1b_ft_in1k", data=TV, file="semi_weakly_supervised_resnext50_32x4-72679e44.pth", license="cc-by-nc-4.0"),
    timm_tag("resnext50_32x4d", "gluon_in1k", data=BICUBIC, file="gluon_resnext50_32x4d-e6a097c1.pth"),
    timm_tag("resnext50_32x4d", "ra_in1k", data=RA, file="resnext50_32x4d_ra-d733960d.pth"),
    torchvision_tag("resnext101_32x8d", "tv_in1k", "IMAGENET1K_V1", "resnext101_32x8d-8ba56ff5.pth", data=TV, top1=79.312, top5=94.526, timm_file="resnext101_32x8d-8ba56ff5.pth"),
    torchvision_tag("resnext101_32x8d", "tv2_in1k", "IMAGENET1K_V2", "resnext101_32x8d-110c445d.pth", data=TV2, top1=82.834, top5=96.228, timm_file="resnext101_32x8d-110c445d.pth", default=True),
    timm_tag("resnext101_32x8d", "fb_ssl_yfcc100m_ft_in1k", data=TV, file="semi_supervised_resnext101_32x8-2cfe2f8b.pth", license="cc-by-nc-4.0"),
    timm_tag("resnext101_32x8d", "fb_swsl_ig1b_ft_in1k", data=TV, file="semi_weakly_supervised_resnext101_32x8-b4712904.pth", license="cc-by-nc-4.0"),
    timm_tag("resnext101_32x8d", "fb_wsl_ig1b_ft_in1k", data=TV, file="ig_resnext101_32x8-c38310e5.pth", license="cc-by-nc-4.0"),
    torchvision_tag("resnext101_64x4d", "tv_in1k", "IMAGENET1K_V1", "resnext101_64x4d-173b62eb.pth", data=TV2_EVAL, top1=83.246, top5=96.454, timm_file="resnext101_64x4d-173b62eb.pth", default=True),
    timm_tag("resnext101_64x4d", "c1_in1k", data=RSB, file="resnext101_64x4d_c-0d0e0cc0.pth"),
    timm_tag("resnext101_64x4d", "gluon_in1k", data=BICUBIC, file="gluon_resnext101_64x4d-f9a8e184.pth"),
    torchvision_tag("wide_resnet50_2", "tv_in1k", "IMAGENET1K_V1", "wide_resnet50_2-95faca4d.pth", data=TV, top1=78.468, top5=94.086, timm_file="wide_resnet50_2-95faca4d.pth"),
    torchvision_tag("wide_resnet50_2", "tv2_in1k", "IMAGENET1K_V2", "wide_resnet50_2-9ba9bcbe.pth", data=TV2, top1=81.602, top5=95.758, timm_file="wide_resnet50_2-9ba9bcbe.pth", default=True),
    timm_tag("wide_resnet50_2", "racm_in1k", data=RA, file="wide_resnet50_racm-8234f177.pth"),
    torchvision_tag("wide_resnet101_2", "tv_in1k", "IMAGENET1K_V1", "wide_resnet101_2-32ee1156.pth", data=TV, top1=78.848, top5=94.284, timm_file="wide_resnet101_2-32ee1156.pth"),
    torchvision_tag("wide_resnet101_2", "tv2_in1k", "IMAGENET1K_V2", "wide_resnet101_2-d733dc28.pth", data=TV2, top1=82.51, top5=96.02, timm_file="wide_resnet101_2-d733dc28.pth", default=True),
)
